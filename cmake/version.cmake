# The git revision faultline is built from, for `faultline version`.
#
# fl_git_revision(DIR VAR) sets VAR to the commit DIR is checked out at
# (12 hex digits), or "unknown" when DIR is not the top of a git work tree
# (a source tarball, even one unpacked inside another repository) or git is
# missing.  Usable in script mode too (tests/unit/install/ runs it there).
#
# fl_git_watch(DIR) makes CMake configure again when HEAD moves (a commit,
# a checkout, a reset), so the value stays true without forcing a rebuild
# of everything: only the one file that uses it is recompiled.

function(fl_git_revision dir var)
  set(rev unknown)
  find_program(FL_GIT_EXECUTABLE git)
  if(FL_GIT_EXECUTABLE)
    execute_process(COMMAND ${FL_GIT_EXECUTABLE} -C ${dir} rev-parse --show-toplevel
                    OUTPUT_VARIABLE top RESULT_VARIABLE rc
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(rc EQUAL 0)
      file(REAL_PATH "${top}" top)
      file(REAL_PATH "${dir}" real)
      if(top STREQUAL real)
        execute_process(COMMAND ${FL_GIT_EXECUTABLE} -C ${dir} rev-parse --short=12 HEAD
                        OUTPUT_VARIABLE out RESULT_VARIABLE rc
                        OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
        if(rc EQUAL 0 AND out MATCHES "^[0-9a-f]+$")
          set(rev ${out})
        endif()
      endif()
    endif()
  endif()
  set(${var} ${rev} PARENT_SCOPE)
endfunction()

function(fl_git_watch dir)
  if(NOT FL_GIT_EXECUTABLE)
    return()
  endif()
  execute_process(COMMAND ${FL_GIT_EXECUTABLE} -C ${dir} rev-parse --absolute-git-dir
                          --git-common-dir --symbolic-full-name HEAD
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT rc EQUAL 0)
    return()
  endif()
  string(REPLACE "\n" ";" out "${out}")
  list(LENGTH out n)
  if(n LESS 2)
    return()
  endif()
  list(GET out 0 gitdir)
  list(GET out 1 common)
  if(NOT IS_ABSOLUTE "${common}")
    set(common "${dir}/${common}")
  endif()
  # HEAD names the branch; logs/HEAD changes on every commit, checkout and
  # reset (also when the branch's ref is packed); the loose ref and
  # packed-refs where the reflog is off.
  set(watch ${gitdir}/HEAD ${gitdir}/logs/HEAD ${common}/packed-refs)
  if(n GREATER 2)
    list(GET out 2 ref)
    list(APPEND watch ${common}/${ref})
  endif()
  foreach(f IN LISTS watch)
    if(EXISTS "${f}")
      set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${f}")
    endif()
  endforeach()
endfunction()
