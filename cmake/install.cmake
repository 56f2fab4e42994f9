# `cmake --install build [--prefix DIR]`: the faultline binary, its man
# pages, bash completion, the documentation (with the scenario JSON Schema)
# and the ready-made scenarios.
#
#   PREFIX/bin/faultline
#   PREFIX/share/man/man1/faultline.1, faultline-<command>.1, ...
#   PREFIX/share/bash-completion/completions/faultline
#   PREFIX/share/doc/faultline/*.md, scenario.schema.json
#   PREFIX/share/faultline/scenarios/*.yaml
#
# The binary needs nothing else at run time: the guest agent, the guest
# init script (hv/blobs.c) and the report's CSS and JavaScript
# (trace/embed.cmake) are compiled into it.
#
# Man pages are made at build time from the binary's own --help output
# (man/gen-man.sh), so they cannot drift from it.
include(GNUInstallDirs)

if(TARGET faultline)
  set(FL_MAN_DIR ${PROJECT_BINARY_DIR}/man)
  add_custom_command(
    OUTPUT ${FL_MAN_DIR}/stamp
    COMMAND bash ${PROJECT_SOURCE_DIR}/man/gen-man.sh $<TARGET_FILE:faultline> ${FL_MAN_DIR}
    DEPENDS faultline ${PROJECT_SOURCE_DIR}/man/gen-man.sh ${PROJECT_SOURCE_DIR}/man/help2roff.awk
    COMMENT "Generating man pages from faultline --help"
    VERBATIM)
  add_custom_target(fl_man ALL DEPENDS ${FL_MAN_DIR}/stamp)

  install(TARGETS faultline RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(DIRECTORY ${FL_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
          FILES_MATCHING PATTERN "*.1")
  install(FILES ${PROJECT_SOURCE_DIR}/completion/faultline.bash
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME faultline)
endif()
file(GLOB FL_DOCS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${FL_DOCS} ${PROJECT_SOURCE_DIR}/docs/scenario.schema.json
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/scenarios/ DESTINATION ${CMAKE_INSTALL_DATADIR}/faultline/scenarios
        FILES_MATCHING PATTERN "*.yaml")
