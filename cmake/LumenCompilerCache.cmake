# Use ccache when present: CI rebuilds from a clean checkout on the same machine, in a
# folder that need not be this one. Paths are hashed relative to the source tree
# (CCACHE_BASEDIR, NOHASHDIR) so a checkout elsewhere hits the same entries; the sloppiness
# lets the precompiled LibTorch header of models/ be cached too.
find_program(LUMEN_CCACHE ccache)
if(LUMEN_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(_lumen_ccache ${CMAKE_COMMAND} -E env CCACHE_BASEDIR=${CMAKE_SOURCE_DIR} CCACHE_NOHASHDIR=true
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime" ${LUMEN_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${_lumen_ccache})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_lumen_ccache})
endif()
