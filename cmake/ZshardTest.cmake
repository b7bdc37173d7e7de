# zshard_gtest(NAME LABELS <labels...> SOURCES <files...> [LIBS <targets...>])
# One gtest executable; each TEST becomes a ctest test carrying the labels
# (unit, integration, slurm, gpu, fuzz), so `ctest -L unit` picks a tier.
include(GoogleTest)

function(zshard_gtest name)
  cmake_parse_arguments(ARG "" "" "LABELS;SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE zshard GTest::gtest GTest::gtest_main ${ARG_LIBS})
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 300
    DISCOVERY_TIMEOUT 30)
endfunction()
