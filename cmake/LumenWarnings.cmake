# Warnings as an INTERFACE target: every Lumen target links lumen::warnings privately.
add_library(lumen_warnings INTERFACE)
add_library(lumen::warnings ALIAS lumen_warnings)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(lumen_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough
    $<$<BOOL:${LUMEN_WARNINGS_AS_ERRORS}>:-Werror>)
endif()
