# LUMEN_SANITIZE=address;undefined (the asan preset) instruments every Lumen target.
set(LUMEN_SANITIZE "" CACHE STRING "Sanitizers to enable, e.g. address;undefined")
if(LUMEN_SANITIZE)
  list(JOIN LUMEN_SANITIZE "," _san)
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${_san})
endif()
