// Reading .npy files: byte images as numpy writes them (versions 1, 2, 3), float64
// conversion, and every refusal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>

#include "npy_test_util.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/npy.hpp"

namespace sparq {
namespace {

using test::dict_for;
using test::file_bytes;
using test::make_npy;

// np.save("a.npy", np.arange(6, dtype="<f4").reshape(2, 3)): version 1.0, header
// length 118 (0x76) so that data starts at byte 128, dict padded with spaces and '\n'.
const std::vector<std::byte> kNumpyV1 =
    file_bytes({0x93, 'N', 'U', 'M', 'P', 'Y', 0x01, 0x00, 0x76, 0x00},
               "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + std::string(58, ' ') + "\n",
               {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40,    // 0 1 2
                0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0x40, 0x00, 0x00, 0xa0, 0x40});  // 3 4 5

// np.lib.format.write_array(f, np.array([0.1, -2.0, 3.25]), version=(2, 0)): u32 length 116.
const std::vector<std::byte> kNumpyV2F8 =
    file_bytes({0x93, 'N', 'U', 'M', 'P', 'Y', 0x02, 0x00, 0x74, 0x00, 0x00, 0x00},
               "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }" + std::string(58, ' ') + "\n",
               {0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f,    // 0.1
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0,    // -2.0
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x40});  // 3.25

// write_array(..., version=(3, 0)) of np.array([[1, -1], [0.5, 2]], "<f4"): UTF-8 header.
const std::vector<std::byte> kNumpyV3 =
    file_bytes({0x93, 'N', 'U', 'M', 'P', 'Y', 0x03, 0x00, 0x74, 0x00, 0x00, 0x00},
               "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }" + std::string(56, ' ') + "\n",
               {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x80, 0xbf, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0x40});

// numpy < 1.14 under Python 2: header padded to 16 bytes, `2L` long literals.
const std::vector<std::byte> kNumpyPy2 =
    file_bytes({0x93, 'N', 'U', 'M', 'P', 'Y', 0x01, 0x00, 0x46, 0x00},
               "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }" + std::string(11, ' ') + "\n",
               {0x00, 0x00, 0x20, 0x41, 0x00, 0x00, 0x20, 0xc1});  // 10 -10

TEST(NpyRead, Version1AsNumpyWritesIt) {
  ASSERT_EQ(kNumpyV1.size(), 128u + 24u);
  const NpyArray a = parse_npy(kNumpyV1, "v1.npy");
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(a.data, (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(a.version, 1);
  EXPECT_FALSE(a.converted_from_f64);
}

TEST(NpyRead, EncoderMatchesNumpyByteForByte) {
  const float data[] = {0, 1, 2, 3, 4, 5};
  const std::size_t shape[] = {2, 3};
  EXPECT_EQ(encode_npy(data, shape), kNumpyV1);
}

TEST(NpyRead, Version2Float64IsConverted) {
  const NpyArray a = parse_npy(kNumpyV2F8, "v2.npy");
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{3}));
  EXPECT_EQ(a.version, 2);
  EXPECT_TRUE(a.converted_from_f64);
  EXPECT_EQ(a.data, (std::vector<float>{0.1f, -2.0f, 3.25f}));
}

TEST(NpyRead, Version3) {
  const NpyArray a = parse_npy(kNumpyV3, "v3.npy");
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{2, 2}));
  EXPECT_EQ(a.version, 3);
  EXPECT_EQ(a.data, (std::vector<float>{1, -1, 0.5f, 2}));
}

TEST(NpyRead, Python2LongsAndOldAlignment) {
  const NpyArray a = parse_npy(kNumpyPy2, "py2.npy");
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{2}));
  EXPECT_EQ(a.data, (std::vector<float>{10, -10}));
}

TEST(NpyRead, ScalarAndEmptyArrays) {
  const float one = 7.5f;
  const NpyArray scalar = parse_npy(make_npy(1, dict_for("<f4", "()"), &one, 4));
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.data, std::vector<float>{7.5f});
  const NpyArray empty = parse_npy(make_npy(1, dict_for("<f4", "(0, 3)"), nullptr, 0));
  EXPECT_EQ(empty.shape, (std::vector<std::size_t>{0, 3}));
  EXPECT_TRUE(empty.data.empty());
}

TEST(NpyRead, HeaderVariantsNumpyAccepts) {
  const float v[] = {1, 2};
  // Double quotes, keys in another order, no trailing comma, extra whitespace.
  for (const char* dict : {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}",
                           "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}",
                           "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , ) , }"}) {
    const NpyArray a = parse_npy(make_npy(1, dict, v, sizeof v));
    EXPECT_EQ(a.data, (std::vector<float>{1, 2})) << dict;
  }
}

TEST(NpyRead, Float64Conversion) {
  // 0x1.ffffffp+127 is FLT_MAX plus half an ulp: IEEE rounds it (ties to even) to inf.
  const double v[] = {
      1e300, -1e300,         std::numeric_limits<double>::quiet_NaN(), 1e-50, std::nextafter(0x1.ffffffp+127, 0.0),
      0.5,   0x1.ffffffp+127};
  const NpyArray a = parse_npy(make_npy(1, dict_for("<f8", "(7,)"), v, sizeof v));
  EXPECT_EQ(a.data[0], std::numeric_limits<float>::infinity());
  EXPECT_EQ(a.data[1], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(a.data[2]));
  EXPECT_EQ(a.data[3], 0.0f);
  EXPECT_EQ(a.data[4], std::numeric_limits<float>::max());  // rounds down to FLT_MAX, not inf
  EXPECT_EQ(a.data[5], 0.5f);
  EXPECT_EQ(a.data[6], std::numeric_limits<float>::infinity());
}

// Expects parse_npy to refuse `bytes` with bad_file, naming the file and saying `what`.
void expect_refused(const std::vector<std::byte>& bytes, const std::string& what) {
  try {
    (void)parse_npy(bytes, "bad.npy");
    ADD_FAILURE() << "accepted; expected a refusal mentioning '" << what << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::bad_file) << e.what();
    const std::string msg = e.what();
    EXPECT_TRUE(msg.starts_with("bad.npy: ")) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "message '" << msg << "' lacks '" << what << "'";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

const float kFour[] = {1, 2, 3, 4};

TEST(NpyRefuse, NotNpy) {
  expect_refused({}, "empty");
  expect_refused(file_bytes({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}, "", {}), "bad magic");
  expect_refused(file_bytes({0x93, 'N', 'U', 'M'}, "", {}), "shorter than");
  auto csv = file_bytes({}, "1.0,2.0,3.0\n4.0,5.0,6.0\n", {});
  expect_refused(csv, "not a .npy file");
}

TEST(NpyRefuse, UnknownVersions) {
  for (unsigned major : {0u, 4u, 255u}) {
    auto b = make_npy(2, dict_for("<f4", "(4,)"), kFour, sizeof kFour);
    b[6] = static_cast<std::byte>(major);
    expect_refused(b, "version " + std::to_string(major) + ".0");
  }
  auto b = make_npy(1, dict_for("<f4", "(4,)"), kFour, sizeof kFour);
  b[7] = std::byte{1};
  expect_refused(b, "version 1.1");
}

TEST(NpyRefuse, Truncation) {
  const auto good = make_npy(1, dict_for("<f4", "(4,)"), kFour, sizeof kFour);
  expect_refused({good.begin(), good.begin() + 9}, "header length");
  expect_refused({good.begin(), good.begin() + 40}, "truncated: the header says");
  expect_refused({good.begin(), good.end() - 1}, "truncated: shape [4] needs 16 bytes of data but only 15");
  auto v2 = make_npy(2, dict_for("<f4", "(4,)"), kFour, sizeof kFour);
  expect_refused({v2.begin(), v2.begin() + 11}, "header length");
  auto longer = good;
  longer.push_back(std::byte{0});
  expect_refused(longer, "1 unexpected bytes after the data");
}

TEST(NpyRefuse, HugeHeaderLength) {
  auto b = make_npy(2, dict_for("<f4", "(4,)"), kFour, sizeof kFour);
  for (int i = 8; i < 12; ++i) b[i] = std::byte{0xff};
  expect_refused(b, "header length 4294967295 is implausible");
}

TEST(NpyRefuse, Dtypes) {
  expect_refused(make_npy(1, dict_for(">f4", "(4,)"), kFour, 16), "'>f4' is big-endian");
  expect_refused(make_npy(1, dict_for(">f8", "(2,)"), kFour, 16), "'>f8' is big-endian");
  expect_refused(make_npy(1, dict_for("|O", "(2,)"), kFour, 16), "object array");
  for (const char* d : {"<i4", "<i8", "<u4", "|u1", "|b1", "<f2", "<c8", "<U1", "|S4", "f4", "=f4"})
    expect_refused(make_npy(1, dict_for(d, "(4,)"), kFour, 16), std::string("dtype '") + d + "' is not supported");
  expect_refused(make_npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", kFour, 16),
                 "structured dtype");
}

TEST(NpyRefuse, FortranOrder) {
  expect_refused(make_npy(1, dict_for("<f4", "(2, 2)", true), kFour, 16), "Fortran order");
}

TEST(NpyRefuse, MalformedDicts) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "dict starting with '{'"},
      {"[1, 2]", "dict starting with '{'"},
      {"{'descr': '<f4', 'shape': (4,), }", "missing key 'fortran_order'"},
      {"{'fortran_order': False, 'shape': (4,), }", "missing key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", "unexpected key 'x'"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (4,)}", "expected ',' or '}' after the value of 'descr'"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (4,)}", "expected ':' after key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4,)}", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4)}", "a single dimension is written (n,)"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [4]}", "must be a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-4,)}", "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4.0,)}", "expected ',' or ')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': ((4,),)}", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,),", "expected a quoted key"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,)", "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,)} junk", "after the closing '}'"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (4,)}", "expected ',' or '}'"},
      {"{'descr': 'ab\\'cd', 'fortran_order': False, 'shape': (4,)}", "unsupported character"},
      {"{'descr", "unsupported character in a string"},  // runs into the padding's '\n'
  };
  for (auto [dict, what] : cases) expect_refused(make_npy(1, dict, kFour, sizeof kFour), what);
}

TEST(NpyRefuse, AbsurdShapes) {
  expect_refused(make_npy(1, dict_for("<f4", "(99999999999999999999999,)"), kFour, 16), "overflows 64 bits");
  expect_refused(make_npy(1, dict_for("<f4", "(4294967296, 4294967296, 16)"), kFour, 16), "element count overflows");
  expect_refused(make_npy(1, dict_for("<f8", "(4611686018427387904,)"), kFour, 16), "size in bytes overflows");
  // Large but representable: refused as truncated, without allocating.
  expect_refused(make_npy(1, dict_for("<f4", "(1000000000, 1000000)"), kFour, 16), "truncated");
  std::string many = "(";
  for (int i = 0; i < 65; ++i) many += "1, ";
  expect_refused(make_npy(1, dict_for("<f4", many + ")"), kFour, 4), "more than 64 dimensions");
}

TEST(NpyRefuse, NonAsciiHeaderIsQuotedSafely) {
  // A v3 header may hold UTF-8; an unknown dtype in it is refused and printed escaped.
  expect_refused(make_npy(3, dict_for("<f4\xc3\xa9", "(4,)"), kFour, 16), "'<f4\\xc3\\xa9' is not supported");
}

TEST(NpyReadFile, MissingFileAndDirectory) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto missing = dir / "sparq-npy-test-does-not-exist.npy";
  try {
    (void)read_npy(missing);
    ADD_FAILURE() << "read a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io_error);
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)read_npy(dir), Error);
}

TEST(NpyReadFile, ReadsWhatIsOnDisk) {
  const auto path = std::filesystem::temp_directory_path() / ("sparq-npy-read-" + std::to_string(::getpid()) + ".npy");
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(kNumpyV2F8.data()), static_cast<std::streamsize>(kNumpyV2F8.size()));
  }
  const NpyArray a = read_npy(path);
  EXPECT_EQ(a.data, (std::vector<float>{0.1f, -2.0f, 3.25f}));
  // The same file truncated on disk: refused, naming the path.
  std::filesystem::resize_file(path, kNumpyV2F8.size() - 3);
  try {
    (void)read_npy(path);
    ADD_FAILURE() << "read a truncated file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::bad_file);
    EXPECT_NE(std::string(e.what()).find(path.string() + ": truncated"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sparq
