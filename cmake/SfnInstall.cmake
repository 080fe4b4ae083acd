# What `cmake --install` puts where (GNUInstallDirs), one component per .deb package:
#
#   server  bin/sfn-server, bin/sfn-server-start.sh, bin/sfn-keys-init.sh,
#           the sfn-server.service unit, /etc/sfn/sfn-server.toml
#   client  bin/sfn-client, bin/sfn-client-start.sh, the sfn-client@.service unit,
#           /etc/sfn/sfn-client.env, and libsfn-client: the shared library, its headers
#           (include/sfn/), the CMake package sfn (lib/cmake/sfn/) and sfn.pc
#   tools   bin/sfn-sim, bin/sfn-search, share/sfn/configs/ (run configs, device profiles,
#           search targets: experiments/configs/ without the test-only integration.toml),
#           share/sfn/presets/ (the SuperNet presets, also compiled into the binaries)
#
# Every component also gets share/doc/sfn-<component>/ with README.md and LICENSE (server and
# client: deploy/README.md too, as deploy/README.md).
#
# Config files go to /etc/sfn for the /usr prefix (the packages) and to PREFIX/etc/sfn
# otherwise (GNUInstallDirs' rule); units go to PREFIX/lib/systemd/system with their paths
# rewritten for PREFIX. Both are decided when installing, since the prefix may be chosen
# then (`cmake --install --prefix`, and cpack installs with /usr).
include(CMakePackageConfigHelpers)

set(SFN_INSTALL_UNITDIR lib/systemd/system CACHE STRING
    "systemd unit folder, relative to the install prefix")
set(SFN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/sfn)

# --- binaries and scripts ---
install(TARGETS sfn-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(PROGRAMS deploy/sfn-server-start.sh deploy/sfn-keys-init.sh
        DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(TARGETS sfn-client RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT client)
install(PROGRAMS deploy/sfn-client-start.sh DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT client)
install(TARGETS sfn-sim sfn-search RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)

# --- config files and systemd units, placed when installing (cmake/SfnInstallTime.cmake) ---
# sfn_install_sysconf(COMPONENT ETC_FILES <files...> UNITS <units...>)
function(sfn_install_sysconf component)
  cmake_parse_arguments(arg "" "" "ETC_FILES;UNITS" ${ARGN})
  install(CODE "
    set(SFN_ETC_FILES \"${arg_ETC_FILES}\")
    set(SFN_UNIT_FILES \"${arg_UNITS}\")
    set(SFN_UNITDIR \"${SFN_INSTALL_UNITDIR}\")
    set(SFN_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
    set(SFN_DATADIR \"${CMAKE_INSTALL_DATADIR}\")
    string(MD5 _sfn_dest \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
    set(SFN_STAGE \"${PROJECT_BINARY_DIR}/install-units/\${_sfn_dest}/${component}\")
    include(\"${PROJECT_SOURCE_DIR}/cmake/SfnInstallTime.cmake\")"
    COMPONENT ${component})
endfunction()
sfn_install_sysconf(server
  ETC_FILES ${PROJECT_SOURCE_DIR}/deploy/k8s/base/sfn-server.toml
  UNITS ${PROJECT_SOURCE_DIR}/deploy/systemd/sfn-server.service)
sfn_install_sysconf(client
  ETC_FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/sfn-client.env
  UNITS ${PROJECT_SOURCE_DIR}/deploy/systemd/sfn-client@.service)

# --- data for the tools ---
install(DIRECTORY experiments/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/sfn/configs
        COMPONENT tools PATTERN integration.toml EXCLUDE)
install(DIRECTORY common/model/presets/ DESTINATION ${CMAKE_INSTALL_DATADIR}/sfn/presets
        COMPONENT tools FILES_MATCHING PATTERN "*.toml")

# --- docs ---
foreach(component server client tools)
  install(FILES README.md LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/sfn-${component}
          COMPONENT ${component})
endforeach()
foreach(component server client)
  install(FILES deploy/README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/sfn-${component}/deploy
          COMPONENT ${component})
endforeach()

# --- libsfn-client: library, headers, CMake package (sfn::client), pkg-config ---
install(TARGETS sfn_client_shared EXPORT sfnTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT client
        NAMELINK_COMPONENT client)
install(FILES ${SFN_CLIENT_API_INCLUDE}/sfn/sfn_client.h
              ${SFN_CLIENT_API_INCLUDE}/sfn/sfn_client_version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sfn COMPONENT client)
install(FILES ${SFN_CLIENT_API_INCLUDE}/sfn/data/sample_source.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sfn/data COMPONENT client)
install(EXPORT sfnTargets NAMESPACE sfn:: DESTINATION ${SFN_INSTALL_CMAKEDIR} COMPONENT client)
configure_package_config_file(cmake/sfnConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/cmake/sfnConfig.cmake
                              INSTALL_DESTINATION ${SFN_INSTALL_CMAKEDIR})
# Before 1.0 a minor version may break the ABI (SONAME libsfn-client.so.MAJOR.MINOR), so a
# request for 0.1 accepts 0.1.x only; from 1.0 on, any later 1.x.
if(PROJECT_VERSION_MAJOR GREATER 0)
  set(_sfn_compat SameMajorVersion)
else()
  set(_sfn_compat SameMinorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/sfnConfigVersion.cmake
                                 COMPATIBILITY ${_sfn_compat})
install(FILES ${PROJECT_BINARY_DIR}/cmake/sfnConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/sfnConfigVersion.cmake
        DESTINATION ${SFN_INSTALL_CMAKEDIR} COMPONENT client)
# sfn.pc finds its prefix from its own folder (${pcfiledir}), so it stays right under
# `cmake --install --prefix` and in the package alike.
file(RELATIVE_PATH _sfn_pc_up ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig
     ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" SFN_PC_PREFIX_FROM_PCFILEDIR "${_sfn_pc_up}")
configure_file(cmake/sfn.pc.in ${PROJECT_BINARY_DIR}/cmake/sfn.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cmake/sfn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT client)
