/* For the Wine test prefix only, never shipped: runs the program named by its arguments, waits
 * for it and exits with the exit code Windows recorded for it (GetExitCodeProcess), printing
 * "exit code N". Wine's server SIGKILLs a process whose Unix side is slow to go away after its
 * last Windows thread ended (half a second); the shell then sees status 137 for a program that
 * did its work and returned 0. Windows' own answer is read here instead. */
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

int wmain(int argc, wchar_t **argv) {
  if (argc < 2) {
    fputs("usage: exit-code PROGRAM [ARGUMENT...]\n", stderr);
    return 255;
  }
  /* The rest of this program's own command line, as it was given. */
  wchar_t *line = GetCommandLineW();
  int quoted = 0;
  for (; *line && (quoted || (*line != L' ' && *line != L'\t')); line++) {
    if (*line == L'"') quoted = !quoted;
  }
  while (*line == L' ' || *line == L'\t') line++;
  STARTUPINFOW startup = {sizeof startup};
  PROCESS_INFORMATION process;
  if (!CreateProcessW(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &startup, &process)) {
    fprintf(stderr, "exit-code: could not start the program (error %lu)\n", GetLastError());
    return 255;
  }
  WaitForSingleObject(process.hProcess, INFINITE);
  DWORD code = 255;
  GetExitCodeProcess(process.hProcess, &code);
  printf("exit code %lu\n", (unsigned long)code);
  fflush(stdout);
  return (int)code;
}
