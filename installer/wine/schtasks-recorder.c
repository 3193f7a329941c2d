/* A stand-in for schtasks.exe in the Wine test prefix only, never shipped. Wine 8's schtasks
 * refuses to create a logon task (it takes only /XML), so the installer's branch for a scheduler
 * that accepts could never run under Wine: this one accepts, and appends its command line (UTF-8,
 * one call a line) to C:\schtasks-calls.txt for installer/test-windows.sh to check. */
#include <windows.h>

int WINAPI wWinMain(HINSTANCE instance, HINSTANCE previous, LPWSTR args, int show) {
  (void)instance; (void)previous; (void)show;
  HANDLE log = CreateFileW(L"C:\\schtasks-calls.txt", FILE_APPEND_DATA, FILE_SHARE_READ, NULL,
                           OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  if (log == INVALID_HANDLE_VALUE) return 2;
  char line[8192];
  int n = WideCharToMultiByte(CP_UTF8, 0, args, -1, line, sizeof line - 2, NULL, NULL);
  if (n <= 0) return 3;
  line[n - 1] = '\n';
  DWORD written;
  BOOL ok = WriteFile(log, line, (DWORD)n, &written, NULL);
  CloseHandle(log);
  return ok ? 0 : 4;
}
