find_package(GTest REQUIRED)
include(GoogleTest)

# lumen_add_test(name SOURCES ... LIBS ... [LABELS ...] [FIXTURES ...])
function(lumen_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS;FIXTURES" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main lumen::warnings)
  target_compile_definitions(${name} PRIVATE
    LUMEN_SAMPLE_DIR="${LUMEN_SAMPLE_DIR}"
    LUMEN_FULL_CT_DIR="${LUMEN_FULL_CT_DIR}"
    LUMEN_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    LUMEN_TEST_WORK_DIR="${PROJECT_BINARY_DIR}/test-work")
  set(_props LABELS "${T_LABELS}")
  if(T_FIXTURES)
    list(APPEND _props FIXTURES_REQUIRED "${T_FIXTURES}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${_props})
endfunction()
