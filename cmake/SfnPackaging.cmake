# Three Debian packages from one `cpack -G DEB` in the build folder, one per install component
# (SfnInstall.cmake), installed under /usr with their config files in /etc/sfn:
#   sfn-server  sfn-server, its unit and default config, the key and start scripts
#   sfn-client  sfn-client, its unit and default config, libsfn-client (library, headers,
#               CMake package, sfn.pc)
#   sfn-tools   sfn-sim, sfn-search, run configs, device profiles, search targets, presets
# Depends are computed by dpkg-shlibdeps from the ELF files themselves: exactly the Debian
# packages of the shared libraries they load (libtorch1.13, libzmq5, libspdlog1.10, libssl3,
# ...), with the minimum versions those packages declare.
set(SFN_DEB_MAINTAINER "sfn developers" CACHE STRING "Maintainer field of the .deb packages")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sfn)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server client tools)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # sfn-server_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${SFN_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME sfn-server)
set(CPACK_DEBIAN_CLIENT_PACKAGE_NAME sfn-client)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME sfn-tools)
set(CPACK_COMPONENT_SERVER_DESCRIPTION
    "SuperFedNAS federated training server (sfn)\n"
    "sfn-server coordinates federated training of a weight-shared SuperNet over ZeroMQ with "
    "CURVE authentication, with a systemd unit and a default configuration in /etc/sfn.")
set(CPACK_COMPONENT_CLIENT_DESCRIPTION
    "SuperFedNAS federated client and libsfn-client (sfn)\n"
    "sfn-client trains the SubNets an sfn-server assigns on a device's own data or a shard of "
    "the run's dataset, with a systemd template unit. libsfn-client embeds the same client in "
    "an app (sfn/sfn_client.h, CMake package sfn, pkg-config sfn).")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "SuperFedNAS simulator and one-shot search (sfn)\n"
    "sfn-sim simulates federations with thousands of virtual clients or drives a server with "
    "real ones; sfn-search cuts signed per-device TorchScript models out of a trained SuperNet.")
# The server validates and sfn-search scores on Fashion-MNIST by default; useradd (passwd)
# creates the units' user in postinst.
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_CLIENT_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_SERVER_PACKAGE_RECOMMENDS "dataset-fashion-mnist")
set(CPACK_DEBIAN_TOOLS_PACKAGE_RECOMMENDS "dataset-fashion-mnist")
set(CPACK_DEBIAN_CLIENT_PACKAGE_SUGGESTS "dataset-fashion-mnist")
# A shlibs file for libsfn-client, so packages built against it depend on sfn-client.
set(CPACK_DEBIAN_CLIENT_PACKAGE_GENERATE_SHLIBS ON)

# Maintainer scripts (cmake/deb/) and conffiles, one folder per package.
foreach(component server client)
  set(_dir ${PROJECT_BINARY_DIR}/deb/${component})
  set(SFN_DEB_PACKAGE sfn-${component})
  set(SFN_DEB_CONFFILE /etc/sfn/sfn-${component})
  if(component STREQUAL "server")
    string(APPEND SFN_DEB_CONFFILE ".toml")
  else()
    string(APPEND SFN_DEB_CONFFILE ".env")
  endif()
  configure_file(cmake/deb/postinst.in ${_dir}/postinst @ONLY)
  configure_file(cmake/deb/postrm.in ${_dir}/postrm @ONLY)
  file(WRITE ${_dir}/conffiles "${SFN_DEB_CONFFILE}\n")
  string(TOUPPER ${component} _upper)
  set(CPACK_DEBIAN_${_upper}_PACKAGE_CONTROL_EXTRA
      "${_dir}/conffiles;${_dir}/postinst;${_dir}/postrm")
endforeach()

include(CPack)
