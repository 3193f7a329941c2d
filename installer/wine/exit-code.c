/* For the Wine test prefix only, never shipped: runs the program named by its arguments (their
 * standard handles are this program's), waits for it, and writes the exit code Windows recorded
 * for it (GetExitCodeProcess) to the file named by WIN_EXIT_CODE_FILE. Wine's server SIGKILLs a
 * process whose Unix side is slow to go away after its last Windows thread ended (at about half
 * a second), and the shell then sees status 137 for a program that did its work and returned 0;
 * installer/windows-env.sh's win_run reads Windows' own answer from the file instead. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

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
    fprintf(stderr, "exit-code: could not start %ls (error %lu)\n", line, GetLastError());
    return 255;
  }
  WaitForSingleObject(process.hProcess, INFINITE);
  DWORD code = 255;
  GetExitCodeProcess(process.hProcess, &code);
  const char *file = getenv("WIN_EXIT_CODE_FILE");
  if (file != NULL && *file) {
    FILE *out = fopen(file, "w");
    if (out == NULL || fprintf(out, "%lu\n", (unsigned long)code) < 0 || fclose(out) != 0) {
      fprintf(stderr, "exit-code: could not write %s\n", file);
      return 255;
    }
  }
  return (int)code;
}
