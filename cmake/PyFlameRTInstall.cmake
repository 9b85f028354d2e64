# Packaging: libpyflame_rt.so (every layer in one shared library), the public headers, the CLI,
# a CMake package (find_package(PyFlameRT) -> PyFlameRT::pyflame_rt) and a pkg-config file.
#
#   cmake --install build --prefix /opt/pyflame-rt
#   # consumer: find_package(PyFlameRT REQUIRED) + target_link_libraries(app PyFlameRT::pyflame_rt)
#   #       or: g++ app.cpp $(pkg-config --cflags --libs pyflame_rt)
#
# The layers stay static libraries inside the build (tests and the Python module link them);
# the shared library takes them whole, so consumers need neither our dependencies' headers nor
# their link lines: oneDNN, CAF, protobuf and ONNX are private to libpyflame_rt.so.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PFRT_LAYERS pfrt_runtime pfrt_compiler pfrt_devices pfrt_streams pfrt_graph)
add_library(pyflame_rt SHARED ${CMAKE_CURRENT_LIST_DIR}/pyflame_rt_library.cpp)
add_library(PyFlameRT::pyflame_rt ALIAS pyflame_rt)
set(PFRT_WHOLE_ARCHIVES)
foreach(layer ${PFRT_LAYERS})
  list(APPEND PFRT_WHOLE_ARCHIVES $<TARGET_FILE:${layer}>)
endforeach()
# --whole-archive: every object, not only those a caller of this file would pull in; the
# layers are listed again (normally) by pfrt_runtime for their own dependencies.
target_link_libraries(pyflame_rt PRIVATE -Wl,--whole-archive ${PFRT_WHOLE_ARCHIVES} -Wl,--no-whole-archive
                      pfrt_runtime)
target_include_directories(pyflame_rt INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}> $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/pyflame_rt>)
target_compile_features(pyflame_rt INTERFACE cxx_std_17)
set_target_properties(pyflame_rt PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
  EXPORT_NAME pyflame_rt LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
add_dependencies(pyflame_rt ${PFRT_LAYERS})

install(TARGETS pyflame_rt EXPORT PyFlameRTTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pyflame_rt)
install(TARGETS pyflame-rt RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Headers keep their layout: #include "session/inference_session.h" (include/pyflame_rt/actors/...).
foreach(dir graph compiler devices actors session streams net)
  if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/${dir})
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pyflame_rt
            FILES_MATCHING PATTERN "*.h")
  endif()
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/graph/version_config.h ${PROJECT_BINARY_DIR}/graph/pfm.pb.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pyflame_rt/graph)

set(PFRT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/PyFlameRT)
install(EXPORT PyFlameRTTargets NAMESPACE PyFlameRT:: DESTINATION ${PFRT_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/PyFlameRTConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake/PyFlameRTConfig.cmake INSTALL_DESTINATION ${PFRT_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/PyFlameRTConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/PyFlameRTConfig.cmake ${CMAKE_BINARY_DIR}/cmake/PyFlameRTConfigVersion.cmake
        DESTINATION ${PFRT_CMAKE_DIR})

# Relocatable: the prefix is found from the .pc file's own place (cmake --install --prefix X).
file(RELATIVE_PATH PFRT_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" PFRT_PC_TO_PREFIX "${PFRT_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/pyflame_rt.pc.in ${CMAKE_BINARY_DIR}/cmake/pyflame_rt.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cmake/pyflame_rt.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
