# g4_test(NAME name SOURCES a.cc ... DEPS lib ... [LABELS l ...])
# One GoogleTest executable per test file, registered with gtest_discover_tests. Tests run with
# the repository root as working directory so they find tests/data/.
include(GoogleTest)
function(g4_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${T_NAME}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    PROPERTIES LABELS "${T_LABELS}"
    DISCOVERY_TIMEOUT 60)
endfunction()
