/* For the Wine test prefix only, never shipped: prints the title of the window Windows
 * considers in the foreground (GetForegroundWindow), and its process id, as UTF-8, so that
 * installer/test-windows.sh can tell which program a cashier would be typing into. */
#include <windows.h>
#include <stdio.h>

int main(void) {
  HWND window = GetForegroundWindow();
  if (window == NULL) {
    puts("none");
    return 0;
  }
  wchar_t title[512];
  char utf8[2048];
  int length = GetWindowTextW(window, title, 512);
  title[length] = 0;
  WideCharToMultiByte(CP_UTF8, 0, title, -1, utf8, sizeof utf8, NULL, NULL);
  DWORD pid = 0;
  GetWindowThreadProcessId(window, &pid);
  printf("%lu %s\n", (unsigned long)pid, utf8);
  return 0;
}
