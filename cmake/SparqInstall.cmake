# Install rules: the library, public headers, a CMake package with version file,
# and a pkg-config file. Consumers: find_package(sparq CONFIG REQUIRED) and
# target_link_libraries(app sparq::sparq).
include(CMakePackageConfigHelpers)

install(TARGETS sparq EXPORT sparqTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/sparq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        PATTERN tools EXCLUDE)  # include/sparq/tools/ belongs to the static, uninstalled tools library
install(FILES ${PROJECT_BINARY_DIR}/include/sparq/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sparq)

set(SPARQ_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sparq)
install(EXPORT sparqTargets NAMESPACE sparq:: DESTINATION ${SPARQ_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sparqConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/sparqConfig.cmake INSTALL_DESTINATION ${SPARQ_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sparqConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sparqConfig.cmake ${PROJECT_BINARY_DIR}/sparqConfigVersion.cmake
        DESTINATION ${SPARQ_CMAKE_DIR})

configure_file(${PROJECT_SOURCE_DIR}/cmake/sparq.pc.in ${PROJECT_BINARY_DIR}/sparq.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sparq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
