# LUMEN_SANITIZE=address;undefined (the asan preset) instruments every Lumen target.
set(LUMEN_SANITIZE "" CACHE STRING "Sanitizers to enable, e.g. address;undefined")
if(LUMEN_SANITIZE)
  list(JOIN LUMEN_SANITIZE "," _san)
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${_san})
endif()

# LUMEN_BUILD_FUZZERS=ON (the fuzz preset): every Lumen library is compiled with libFuzzer's
# coverage instrumentation (-fsanitize=fuzzer-no-link: inline 8-bit counters, PC table,
# comparison tracing), so the fuzzer is guided by the branches of the code it calls and not
# only by those of its harness. The harness adds -fsanitize=fuzzer, which links libFuzzer
# (tests/fuzz). Libraries from the system (DCMTK, OpenJPEG, zlib, ...) are not instrumented.
# The instrumented objects call back into a sanitizer runtime: keep LUMEN_SANITIZE set.
if(LUMEN_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang" OR NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "LUMEN_BUILD_FUZZERS needs clang for C and C++ (use the 'fuzz' preset)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
