# Use ccache when present: CI rebuilds from a clean checkout on the same machine.
find_program(LUMEN_CCACHE ccache)
if(LUMEN_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER "${LUMEN_CCACHE}")
  set(CMAKE_CXX_COMPILER_LAUNCHER "${LUMEN_CCACHE}")
endif()
