; The Windows installer of loyalty-till, built on Debian by installer/build-windows.sh:
;   makensis -DVERSION=0.1.0 -DEXE=…/loyalty-till.exe -DICON=…/icon.ico -DOUTFILE=…/setup.exe installer/loyalty-till.nsi
; Installs into Program Files, adds Start-menu and desktop shortcuts and (optionally) starts the
; till at logon. Upgrades in place: the guest database and config live in the user's AppData
; (the `directories` crate), never next to the .exe, so they survive. The uninstaller keeps them
; unless asked. Silent: `setup.exe /S` (options: /NOAUTOSTART /NODESKTOP), `uninstall.exe /S`
; (add /REMOVEDATA to delete the guest database as well).

Unicode true
; 64-bit stub: the till is 64-bit, and a 32-bit setup would write to the 32-bit views.
Target amd64-unicode
SetCompressor /SOLID lzma
RequestExecutionLevel admin

!ifndef VERSION
  !error "makensis -DVERSION=x.y.z"
!endif

!define APP "loyalty-till"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP}"
!define APP_KEY "Software\${APP}"

Name "${APP}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${APP}"
InstallDirRegKey HKLM "${APP_KEY}" "InstallDir"
ShowInstDetails show
ShowUninstDetails show
VIProductVersion "${VERSION}.0"
VIAddVersionKey /LANG=1049 "ProductName" "${APP}"
VIAddVersionKey /LANG=1049 "FileDescription" "${APP} setup"
VIAddVersionKey /LANG=1049 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=1049 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=1049 "LegalCopyright" "MIT licence"

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP}.exe"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

; Russian first: the default for a cashier's till.
!insertmacro MUI_LANGUAGE "Russian"
!insertmacro MUI_LANGUAGE "English"

LangString SecApp ${LANG_RUSSIAN} "Программа loyalty-till"
LangString SecApp ${LANG_ENGLISH} "loyalty-till"
LangString SecDesktop ${LANG_RUSSIAN} "Ярлык на рабочем столе"
LangString SecDesktop ${LANG_ENGLISH} "Desktop shortcut"
LangString SecAutostart ${LANG_RUSSIAN} "Запускать вместе с Windows"
LangString SecAutostart ${LANG_ENGLISH} "Start with Windows"
LangString UnSecApp ${LANG_RUSSIAN} "Программа и ярлыки"
LangString UnSecApp ${LANG_ENGLISH} "Program and shortcuts"
LangString UnSecData ${LANG_RUSSIAN} "Удалить базу гостей, настройки и журналы"
LangString UnSecData ${LANG_ENGLISH} "Delete the guest database, settings and logs"
LangString ClosingTill ${LANG_RUSSIAN} "Закрываем запущенную программу loyalty-till…"
LangString ClosingTill ${LANG_ENGLISH} "Closing the running loyalty-till…"

; A running till keeps its .exe locked: ask it to close (it saves as it goes), then insist.
!macro CloseRunningTill
  DetailPrint "$(ClosingTill)"
  nsExec::Exec 'taskkill /IM ${APP}.exe'
  Pop $0
  Sleep 2000
  nsExec::Exec 'taskkill /F /IM ${APP}.exe'
  Pop $0
!macroend

Section "!$(SecApp)" SecApp
  SectionIn RO
  !insertmacro CloseRunningTill
  SetOutPath "$INSTDIR"
  File "/oname=${APP}.exe" "${EXE}"
  File "/oname=${APP}.ico" "${ICON}"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; Shortcuts for every user of the till.
  SetShellVarContext all
  CreateDirectory "$SMPROGRAMS\${APP}"
  CreateShortcut "$SMPROGRAMS\${APP}\${APP}.lnk" "$INSTDIR\${APP}.exe" "" "$INSTDIR\${APP}.ico"
  CreateShortcut "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk" "$INSTDIR\uninstall.exe"

  WriteRegStr HKLM "${APP_KEY}" "InstallDir" "$INSTDIR"
  WriteRegStr HKLM "${APP_KEY}" "Version" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "${APP}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${APP}.ico"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "EstimatedSize" $0
SectionEnd

Section "$(SecDesktop)" SecDesktop
  SetShellVarContext all
  CreateShortcut "$DESKTOP\${APP}.lnk" "$INSTDIR\${APP}.exe" "" "$INSTDIR\${APP}.ico"
SectionEnd

; The till asks for administrator rights, and Windows does not elevate programs from the Run key
; at logon, so autostart is a logon task with the highest privileges; the Run key is the
; fallback where the task scheduler refuses.
Section "$(SecAutostart)" SecAutostart
  nsExec::ExecToLog 'schtasks /Create /F /TN "${APP}" /SC ONLOGON /RL HIGHEST /TR "\"$INSTDIR\${APP}.exe\""'
  Pop $0
  ${If} $0 == 0
    WriteRegStr HKLM "${APP_KEY}" "Autostart" "task"
  ${Else}
    WriteRegStr HKLM "Software\Microsoft\Windows\CurrentVersion\Run" "${APP}" '"$INSTDIR\${APP}.exe"'
    WriteRegStr HKLM "${APP_KEY}" "Autostart" "run-key"
  ${EndIf}
SectionEnd

Function .onInit
  ; Upgrade: install over the previous version where it is.
  ReadRegStr $0 HKLM "${APP_KEY}" "InstallDir"
  ${If} $0 != ""
    StrCpy $INSTDIR $0
  ${EndIf}
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/NOAUTOSTART" $R1
  ${IfNot} ${Errors}
    SectionSetFlags ${SecAutostart} 0
  ${EndIf}
  ClearErrors
  ${GetOptions} $R0 "/NODESKTOP" $R1
  ${IfNot} ${Errors}
    SectionSetFlags ${SecDesktop} 0
  ${EndIf}
FunctionEnd

Section "un.$(UnSecApp)" UnSecApp
  SectionIn RO
  !insertmacro CloseRunningTill
  nsExec::Exec 'schtasks /Delete /F /TN "${APP}"'
  Pop $0
  DeleteRegValue HKLM "Software\Microsoft\Windows\CurrentVersion\Run" "${APP}"
  SetShellVarContext all
  Delete "$DESKTOP\${APP}.lnk"
  RMDir /r "$SMPROGRAMS\${APP}"
  Delete "$INSTDIR\${APP}.exe"
  Delete "$INSTDIR\${APP}.ico"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINSTALL_KEY}"
  DeleteRegKey HKLM "${APP_KEY}"
SectionEnd

; Off unless chosen: the guest database is the cafe's ledger.
Section /o "un.$(UnSecData)" UnSecData
  SetShellVarContext current
  RMDir /r "$LOCALAPPDATA\${APP}"
  RMDir /r "$APPDATA\${APP}"
SectionEnd

Function un.onInit
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/REMOVEDATA" $R1
  ${IfNot} ${Errors}
    SectionSetFlags ${UnSecData} 1
  ${EndIf}
FunctionEnd
