# Helpers for tests.  Unit tests are CMocka executables, one per module,
# labelled "unit"; integration tests boot real guests, labelled
# "integration".
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)

# fl_unit_test(NAME name SOURCES a.c ... LIBS fl_x ... [TIMEOUT s])
function(fl_unit_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS unit TIMEOUT ${T_TIMEOUT}
                       ENVIRONMENT "FL_SOURCE_DIR=${PROJECT_SOURCE_DIR};FL_BUILD_DIR=${PROJECT_BINARY_DIR}")
endfunction()

# fl_integration_test(NAME name COMMAND cmd... [TIMEOUT s])
# The command runs from the source root with FL_BUILD_DIR and FAULTLINE
# (path of the faultline binary) in its environment.  Exit 77 = skipped.
function(fl_integration_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${T_NAME} PROPERTIES LABELS integration TIMEOUT ${T_TIMEOUT}
                       SKIP_RETURN_CODE 77 RESOURCE_LOCK guests
                       ENVIRONMENT "FL_SOURCE_DIR=${PROJECT_SOURCE_DIR};FL_BUILD_DIR=${PROJECT_BINARY_DIR};FAULTLINE=${PROJECT_BINARY_DIR}/cli/faultline")
endfunction()

# fl_fuzz_target(NAME name SOURCE file.c LIBS fl_x [TIMEOUT s])
# With FL_FUZZ: a libFuzzer binary, and a test replaying the corpus with
# -runs=0.  Otherwise: the same target linked with tests/fuzz/replay.c, and
# a unit test replaying the corpus, so every build (ASan included) runs the
# kept inputs.  The corpus is the folder's corpus/.
function(fl_fuzz_target)
  cmake_parse_arguments(F "" "NAME;SOURCE;TIMEOUT" "LIBS" ${ARGN})
  if(NOT F_TIMEOUT)
    set(F_TIMEOUT 300)
  endif()
  set(corpus ${CMAKE_CURRENT_SOURCE_DIR}/corpus)
  if(FL_FUZZ)
    add_executable(${F_NAME} ${F_SOURCE})
    target_link_libraries(${F_NAME} PRIVATE ${F_LIBS})
    target_link_options(${F_NAME} PRIVATE -fsanitize=fuzzer)
    add_test(NAME ${F_NAME}_corpus COMMAND ${F_NAME} -runs=0 ${corpus})
    set_tests_properties(${F_NAME}_corpus PROPERTIES LABELS fuzz TIMEOUT ${F_TIMEOUT})
  else()
    add_executable(${F_NAME}_replay ${F_SOURCE} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay.c)
    target_link_libraries(${F_NAME}_replay PRIVATE ${F_LIBS} fl_core)
    add_test(NAME ${F_NAME}_corpus COMMAND ${F_NAME}_replay ${corpus})
    set_tests_properties(${F_NAME}_corpus PROPERTIES LABELS unit TIMEOUT ${F_TIMEOUT})
  endif()
endfunction()
