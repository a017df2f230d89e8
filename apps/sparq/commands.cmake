# Sources of the sparq subcommands (paths relative to apps/sparq/), one file each plus
# small helpers. Adding a subcommand: its file here and X(<name>) in main.cpp.
list(APPEND SPARQ_APP_SOURCES machine_summary.cpp options.cpp gnuplot.cpp)
list(APPEND SPARQ_APP_SOURCES info.cpp)
list(APPEND SPARQ_APP_SOURCES attend.cpp)
list(APPEND SPARQ_APP_SOURCES eval.cpp eval_report.cpp)
list(APPEND SPARQ_APP_SOURCES generate.cpp perplexity.cpp model_cli.cpp passkey.cpp passkey_report.cpp)
list(APPEND SPARQ_APP_SOURCES roofline.cpp roofline_report.cpp)
list(APPEND SPARQ_APP_SOURCES layouts.cpp layouts_report.cpp)
list(APPEND SPARQ_APP_SOURCES soak.cpp)
list(APPEND SPARQ_APP_SOURCES bench_model.cpp)
