/* Wine 8.0 (Debian 12) lacks bcryptprimitives.dll!ProcessPrng, which Rust's standard library
   imports on Windows. This stand-in lets the till and its tests run under Wine in CI. Real
   Windows 10/11 has the function: this DLL is never shipped or installed. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* advapi32!RtlGenRandom */

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
