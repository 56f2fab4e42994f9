# cmake -DDIR=path -P revision.cmake: prints what fl_git_revision gives DIR.
include(${CMAKE_CURRENT_LIST_DIR}/../../../cmake/version.cmake)
fl_git_revision(${DIR} rev)
message("${rev}")
