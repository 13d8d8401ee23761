# Install layout and the Debian package (packaging/build-deb.sh runs cpack on a build).
#
#   <prefix>/bin/lumen, lumen-cli
#   <prefix>/lib/<multiarch>/lumen/ the AI and PDF-report plug-ins (private: found from the executable,
#                                  see core/include/lumen/core/InstallPaths.h)
#   <prefix>/share/lumen/models/   the shipped model bundles and their cards
#   desktop entry, icon, MIME glob for DICOMDIR, man pages, copyright, changelog
include(GNUInstallDirs)
set(_pkg "${PROJECT_SOURCE_DIR}/packaging/deb")
set(_doc "${CMAKE_INSTALL_DATAROOTDIR}/doc/lumen")
# Modules are loaded with dlopen, not executed.
set(_module_perms OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

install(TARGETS lumen-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS lumen_cli_report LIBRARY DESTINATION ${LUMEN_INSTALL_PLUGINDIR} PERMISSIONS ${_module_perms})
set(_man_pages lumen-cli.1)
if(TARGET lumen_cli_ai)
  install(TARGETS lumen_cli_ai LIBRARY DESTINATION ${LUMEN_INSTALL_PLUGINDIR} PERMISSIONS ${_module_perms})
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/resources/models/" DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lumen/models
          FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
if(TARGET lumen)
  install(TARGETS lumen RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  if(TARGET lumen_gui_ai)
    install(TARGETS lumen_gui_ai LIBRARY DESTINATION ${LUMEN_INSTALL_PLUGINDIR} PERMISSIONS ${_module_perms})
  endif()
  install(FILES "${_pkg}/lumen.desktop" DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/applications)
  install(FILES "${_pkg}/lumen.svg" DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/icons/hicolor/scalable/apps)
  install(FILES "${_pkg}/lumen-mime.xml" DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/mime/packages RENAME lumen.xml)
  list(APPEND _man_pages lumen.1)
endif()

# Man pages and the changelog, compressed as Debian wants them (gzip -9n: no name, no time).
find_program(LUMEN_GZIP gzip REQUIRED)
set(_gz)
foreach(_page IN LISTS _man_pages)
  add_custom_command(OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/man/${_page}.gz"
                     COMMAND ${CMAKE_COMMAND} -E make_directory "${CMAKE_CURRENT_BINARY_DIR}/man"
                     COMMAND ${LUMEN_GZIP} -9n -c "${_pkg}/${_page}" > "${CMAKE_CURRENT_BINARY_DIR}/man/${_page}.gz"
                     DEPENDS "${_pkg}/${_page}" VERBATIM)
  list(APPEND _gz "${CMAKE_CURRENT_BINARY_DIR}/man/${_page}.gz")
  install(FILES "${CMAKE_CURRENT_BINARY_DIR}/man/${_page}.gz" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endforeach()
set(LUMEN_VERSION "${PROJECT_VERSION}")
configure_file("${_pkg}/changelog.in" "${CMAKE_CURRENT_BINARY_DIR}/changelog" @ONLY)
add_custom_command(OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/changelog.gz"
                   COMMAND ${LUMEN_GZIP} -9n -c "${CMAKE_CURRENT_BINARY_DIR}/changelog" > "${CMAKE_CURRENT_BINARY_DIR}/changelog.gz"
                   DEPENDS "${CMAKE_CURRENT_BINARY_DIR}/changelog" VERBATIM)
list(APPEND _gz "${CMAKE_CURRENT_BINARY_DIR}/changelog.gz")
add_custom_target(lumen_package_docs ALL DEPENDS ${_gz})
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/changelog.gz" "${_pkg}/copyright" DESTINATION ${_doc})

# ---- Debian package ----
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lumen)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # lumen_<version>_amd64.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${LUMEN_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Library dependencies from the binaries (dpkg-shlibdeps); plus what is loaded at run time
# rather than linked: Qt's platform plug-ins (a window needs xcb or wayland).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
if(TARGET lumen)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "qt6-qpa-plugins")
endif()
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "medical image workstation with in-process AI models")
# CPack puts the summary first; this is the extended description.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "Lumen opens CT, MR and X-ray studies from DICOM folders, files and DICOMDIRs
(every transfer syntax), NIfTI and NRRD, keeps them in a study database, and
shows them in 2D with window and level, in multi-planar reformats and in 3D.
.
It runs MONAI bundles (segmentation, classification, enhancement) in-process
with LibTorch, on CUDA when present and otherwise on the CPU, and puts every
result back on the input's grid. Three reference models are included.
.
The lumen-cli command imports, inspects and converts images and runs models
from scripts. Lumen is research software, not a certified medical device.")
include(CPack)
