# Runs inside `cmake --install` and cpack (install(CODE) of sfn_install_sysconf in
# SfnInstall.cmake), where CMAKE_INSTALL_PREFIX is the prefix of this install.
#
# In: SFN_ETC_FILES, SFN_UNIT_FILES (absolute source paths), SFN_UNITDIR, SFN_BINDIR,
#     SFN_DATADIR (relative to the prefix), SFN_STAGE (a build folder for rewritten units,
#     one per destination, so concurrent installs elsewhere do not share it).
#
# Config files go to ETC/sfn: ETC is /etc for the /usr prefix (the packages), PREFIX/etc
# otherwise, as GNUInstallDirs' CMAKE_INSTALL_FULL_SYSCONFDIR. The units name the package's
# paths (/usr/bin, /etc/sfn, /usr/share/doc); for another prefix they are rewritten to this
# install's, so an installed unit never starts a binary from somewhere else.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_sfn_etc "/etc")
else()
  set(_sfn_etc "${CMAKE_INSTALL_PREFIX}/etc")
endif()

if(SFN_ETC_FILES)
  file(INSTALL DESTINATION "${_sfn_etc}/sfn" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE
       GROUP_READ WORLD_READ FILES ${SFN_ETC_FILES})
endif()

foreach(_sfn_unit IN LISTS SFN_UNIT_FILES)
  file(READ "${_sfn_unit}" _sfn_text)
  if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    string(REPLACE "/usr/bin/" "${CMAKE_INSTALL_PREFIX}/${SFN_BINDIR}/" _sfn_text "${_sfn_text}")
    string(REPLACE "/usr/share/doc/" "${CMAKE_INSTALL_PREFIX}/${SFN_DATADIR}/doc/" _sfn_text
                   "${_sfn_text}")
    string(REPLACE "/etc/sfn" "${_sfn_etc}/sfn" _sfn_text "${_sfn_text}")
  endif()
  get_filename_component(_sfn_name "${_sfn_unit}" NAME)
  file(WRITE "${SFN_STAGE}/${_sfn_name}" "${_sfn_text}")
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${SFN_UNITDIR}" TYPE FILE PERMISSIONS
       OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${SFN_STAGE}/${_sfn_name}")
endforeach()
