# Warnings for our own targets only (not for consumers of the installed package).
function(sparq_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-psabi)
endfunction()
