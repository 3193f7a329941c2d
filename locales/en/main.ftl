# Till interface strings (English). Amounts arrive formatted: "1 234,50".

back = Back
cancel = Cancel
menu = Menu
menu-language = Language
menu-layout = Window
menu-on-top = Stay on top
menu-export-logs = Send logs
export-what = The archive holds the logs, the settings without passwords and the device list; phones and card numbers are hidden.
export-folder = Folder for the archive
export-save = Save
export-save-upload = Save and send
export-collecting = Collecting logs…
export-saving = Saving the archive…
export-uploading = Sending to support: { $sent } of { $total } KB
export-waiting = Archive sent, waiting for support's answer…
export-not-started = Could not start: { $reason }
export-saved = Archive saved: { $path }
export-saved-elsewhere = Could not save to the chosen folder: { $reason }. The archive is saved here: { $path }
export-not-saved = The archive was not saved: { $reason }.
export-not-saved-fallback = The fallback folder failed too: { $reason }.
export-not-built = The archive could not be made: { $reason }
export-logs-untouched = The logs are safe in { $dir }. Choose another folder and press «Save» again.
export-sent = The archive was sent to support.
export-sent-reply = Support replied: { $reply }
export-upload-failed = Could not send to support: { $reason }.
export-upload-failed-kept = Could not send to support: { $reason }. The archive is kept on this computer: { $path }
export-error-no-permission = no permission to write to the folder { $dir }
export-error-disk-full = not enough disk space ({ $dir })
export-error-not-a-folder = { $dir } is not a folder
export-error-other = could not write to the folder { $dir }: { $detail }
export-upload-bad-url = the support address in the settings is wrong ({ $detail })
export-upload-no-tls = the support address starts with https://, and this program sends over http:// only
export-upload-unreachable = the support server { $host } cannot be reached
export-upload-timeout = the support server did not answer in time
export-upload-rejected = the support server did not accept the archive (HTTP { $status })
menu-close = Close menu
not-built-yet = Not built yet
lang-ru = Русский
lang-en = English
layout-side = Side panel
layout-full = Full screen
notice-dismiss = Dismiss

keypad-backspace = Delete
keypad-clear = Clear
keypad-backspace-short = ‹
keypad-letters = Letters A–Z
keypad-digits = Digits 0–9

idle-brand-hint = Press to add a guest: scan a QR code or type the card code.

order-title = Order
order-empty = The order has no items
order-total = Total
order-edit = Check total
order-demo = Demo order
order-gift-points = gift · { $points } pts
order-line-hint = Type the item price and press "Add item".
order-line-placeholder = Price
order-add-line = Add item
order-clear = Clear order
order-done = Done

add-guest-title = Add a guest
add-guest-hint = Scan the guest's or gift QR code, or type the card code or phone number.
add-guest-placeholder = Card code or phone
add-guest-find = Find guest
add-guest-paste = QR from clipboard
add-guest-searching = Looking up the guest…

guest-balance = Bonuses
guest-available = Available to spend
guest-group = Group
guest-group-value = { $group } · { $discount } % off
guest-visits-left = Visits today
guest-visits-left-value = { $left } of { $limit } left
guest-promotions = Promotions
guest-promotions-count = { $count ->
    [0] none
    [one] { $count } promotion
   *[other] { $count } promotions
}
guest-stamps = Stamps
guest-check-promotions = Check promotions
guest-pay = Pay
guest-remove = Remove guest
guest-remove-question = Remove { $name } from the order?
guest-remove-yes = Yes, remove
guest-remove-no = No

stamps-title = Stamps
stamps-none = The programme has no stamp cards.
stamps-progress = { $collected } of { $needed }
stamps-reward = Reward: { $reward }
stamps-reward-ready = Reward ready: { $reward }

promotions-title = Promotions
promotions-none = No promotions are running now.
promotions-until = Valid until { $date }

replace-title = A guest is already added
replace-question = { $name } is already on this order. Replace with { $new }?
replace-yes = Replace guest
replace-no = Keep current guest

payment-calculating = Calculating bonuses…
payment-choice-title = Payment
payment-subtotal = Order amount
payment-discount = Group discount
payment-due = Amount due
payment-gift = Gift: { $gift }, given with this check
payment-keep = Keep bonuses (earns { $accrual })
payment-spend = Spend bonuses (up to { $max })
payment-nothing-to-spend = Bonuses cannot be spent now:
payment-keep-title = Payment, bonuses accrue
payment-spend-title = Pay with bonuses
payment-max = Maximum to spend: { $max }
payment-spend-label = Bonuses to spend
payment-preset-max = Maximum
payment-preset-half = Half
payment-preset-zero = 0.00
payment-amount-placeholder = 0.00
payment-remainder = Remainder to pay
payment-accrual = Will accrue
payment-accrual-preview = Bonuses to accrue: { $accrual }
payment-tendered-label = Received from the guest
payment-exact = Exact amount
payment-change = Change
payment-confirm = Complete payment
tender-cash = Cash
tender-card = Card

limits-title = The maximum is the smallest of:
limit-available = Available balance
limit-check-percent = { $percent } % of the amount due
limit-daily = Left of the daily limit
limit-amount-due = Amount due
limit-step = Bonuses are spent in multiples of { $step }

processing-hold = Reserving bonuses…
processing-commit = Completing payment…
processing-void = Releasing the reserve…

done-title = Payment complete
done-spent-accrued = Spent { $spent } bonuses, accrued { $accrued }
done-accrued = Accrued { $accrued } bonuses
done-balance = Guest balance
done-gift = Gift given: { $gift }
done-new-group = The guest moved to the group "{ $group }"
done-new-order = New order
done-title-provisional = Check closed without the server
done-provisional-note = Provisional: the loyalty server will book it at this check's time once the connection is back. The balance may change.
done-balance-provisional = Guest balance (provisional)
done-accrued-provisional = The accrual of { $accrued } bonuses is kept on this till and will be sent to the server (provisional)
done-spent-accrued-provisional = Spent { $spent } bonuses, accrued { $accrued }: kept on this till and will be sent to the server (provisional)

info-wait = Please wait, an operation is in progress…
info-guest-removed = The guest was removed from the order
info-payment-cancelled = Bonus payment cancelled, reserve released
info-payment-cancelled-nothing-held = Bonus payment cancelled; no bonuses were spent or reserved
info-gift-added = Gift "{ $gift }" added to the order
info-gift-already-in-order = This gift is already in the order

err-no-guest = Add a guest first
err-code-empty = Type the card code, scan a QR code or type a phone number
err-code-too-long = The code is too long (over { $max } characters). Check the scanner or type the code again.
err-unknown-code = No guest has this code. Check the code and try again.
err-gift-used = This gift has already been received
err-daily-ops-limit = The guest has made all the paid visits their group allows today ({ $limit }). Try tomorrow.
err-finish-payment-first = Finish or cancel the payment first
err-order-empty = The order is empty: type the check total
err-amount-empty = Type an amount
err-amount-not-number = The amount must be digits, e.g. 150 or 150,50
err-amount-decimals = At most two digits after the decimal comma
err-amount-too-large = The amount is too large
err-amount-zero = The amount must be more than zero
err-over-max = At most { $max } bonuses can be spent
err-spend-step = Bonuses are spent only in multiples of { $step }: drop the kopecks
err-tendered-short = Received less than the remainder ({ $remainder }). Press "Exact amount" or type the amount.
err-hold-lost = The bonus reserve expired or was cancelled. Make the payment again.
err-ledger-refused = The bonus ledger refused the operation. Make the payment again.
err-offline-unknown-guest = No connection to the loyalty server, and this guest was not identified on this till recently. Close the check without bonuses.
err-offline-no-spending = No connection to the loyalty server: bonuses cannot be spent. Nothing was spent or reserved. Press "Cancel" and choose "Keep bonuses": the accrual is sent later.
err-token-refused = The loyalty server refuses this till's token. Close the check without bonuses and tell the administrator: a new token is needed in config.toml.
err-backend-unavailable = The bonus ledger is unreachable. Pay without bonuses or try later.
err-storage = Bonus ledger error. Nothing was charged; please tell support.

err-scan-garbled = The scanner sent unreadable data. Check the scanner's settings and scan again.
err-swipe-again = The card did not read. Swipe it again.
err-qr-forged = The QR code failed the signature check. Ask the guest to reopen the code in the app.
err-qr-expired = The QR code has expired. Ask the guest to refresh it in the app.
err-qr-clock = The QR code was issued "in the future": check this till's date and time.
err-qr-no-key = This till cannot check app QR codes: no programme key is set. Type the card code instead.
err-qr-unknown = This QR code or barcode is not a loyalty code.
err-clipboard-empty = The clipboard holds no picture and no text. Copy the guest's QR code and press again.
err-clipboard-no-qr = No QR code found in the picture on the clipboard. Copy the QR larger and sharper.
status-device-connected = { $device }: connected
status-device-lost = { $device }: lost
status-device-reopening = { $device }: reconnecting…

status-starting = Connecting to the bonus ledger…
status-embedded = Embedded ledger: { $path }
status-server = Loyalty server: { $url }
status-offline = No connection to the loyalty server since { $since } ({ $url }): accruals are kept and sent later
status-token-refused = The loyalty server ({ $url }) refuses this till's token: a new token (loyalty-till till-token create) is needed in config.toml, [server] token; tell the administrator
status-failed = Ledger unavailable: { $reason }
status-demo = DEMO

## Devices screen
devices-menu = Devices: scanners and readers
devices-title = Devices
devices-refresh = Refresh list
devices-close = Close
devices-searching = Looking for devices…
devices-detect-not-started = Device search did not start. Close the screen and open it again; details are in the log.
devices-detect-no-list = Device search stopped. Press «Refresh list»; details are in the log.
devices-found = Devices found
devices-tap-hint = Tap a device to choose its role.
devices-none = No devices found
devices-none-hint = Plug in a scanner or card reader and press «Refresh list». A scanner in USB-COM mode shows as a serial port; in HID POS or keyboard mode, as a HID device.
devices-list-serial = Serial ports
devices-list-hid = HID devices
devices-list-usb = USB devices
devices-list-unavailable = { $list }: list not available on this computer (details are in the log)
devices-row = { $device }: { $role }
devices-kind-serial = Serial port
devices-kind-keyboard = Keyboard mode (HID keyboard)
devices-kind-hid-scanner = HID POS scanner (page 0x8C)
devices-kind-hid-card-reader = HID POS magnetic card reader (page 0x8E)
devices-kind-hid = HID device, page { $page }
devices-kind-hid-unknown = HID device
devices-usb = USB { $ids }
devices-usb-serial = USB { $ids }, serial number { $serial }
devices-not-present = Not found on this system now; the setting is kept in config.toml.
devices-status-connected = Port open, the device is being read.
devices-status-lost = No connection to the device: check the cable (details are in the log).
devices-status-reopening = Reconnecting…
devices-keyboard-windows-only = Keyboard mode is read on Windows only; here the setting is only saved.
devices-role = Role
devices-role-scanner = Scanner
devices-role-card-reader = Card reader
devices-role-ignore = Don't use
devices-baud = Baud rate
devices-terminator = End of read
devices-terminator-cr = CR
devices-terminator-lf = LF
devices-terminator-cr-lf = CR LF
devices-terminator-etx = ETX
devices-terminator-idle = Pause
devices-other-usb = Other USB devices
devices-other-usb-hint = Neither a serial port nor HID: the till cannot read them. Switch the scanner to USB-COM or HID POS mode (see its manual).
devices-test-title = Read test
devices-test-hint = While this screen is open, reads are only shown here and look up no guest. Card numbers and phones are hidden; the end-of-read character (CR, LF, ETX) is already cut off.
devices-test-empty = Scan a code or swipe a card: the read appears here.
devices-test-read = { $source }, { $len } { $len ->
    [one] byte
   *[other] bytes
}
devices-test-typed = Typed line, { $len } { $len ->
    [one] byte
   *[other] bytes
}
devices-masked-track1 = track 1 masked
devices-masked-track2 = track 2 masked
devices-masked-token = token masked
devices-test-parsed = Parsed: { $kind }, code { $code }
devices-test-refused = Not accepted: { $reason }
devices-test-detail = Details: { $detail }
devices-test-dropped = { $source }: { $dropped } { $dropped ->
    [one] byte
   *[other] bytes
} dropped ({ $reason })
devices-kind-card-code = card code (barcode)
devices-kind-qr = QR code
devices-kind-guest-token = guest QR code from the app
devices-kind-gift-token = gift QR code from the app
devices-kind-magnetic = magnetic card
devices-drop-noise = noise before a read
devices-drop-too-long = read too long
devices-drop-incomplete = read cut off, its end character never came
devices-drop-bad-report = HID report does not match the device's description
devices-error-too-long = the read is { $len } bytes long; at most { $max } are accepted.
devices-error-not-utf8 = this is not text (bad byte at position { $at }): check the device's settings.
devices-error-empty = empty read.
devices-typed-title = Check a line by hand
devices-typed-hint = For a technician: the line as the device sends it. Control characters are typed as \r for CR, \n for LF, \t for tab, \\ for a backslash, \x03 for the byte 03.
devices-typed-placeholder = e.g. %B…?;…?\r
devices-typed-check = Check line
devices-typed-error-trailing = Error in the line: it ends with a lone «\». To type a backslash itself, write \\.
devices-typed-error-unknown = Error in the line: unknown sequence «\{ $found }» at position { $at }. Use \r, \n, \t, \\ or \xNN.
devices-typed-error-hex = Error in the line: «\x» at position { $at } needs two hex digits, e.g. \x03.
devices-show-all = Show all ({ $count } { $count ->
    [one] port with no device
   *[other] ports with no device
} and the manual line check)
devices-show-less = Hide ports with no device and the manual check
devices-source-keyboard = keyboard
devices-source-clipboard = clipboard
devices-detail-no-track = the read holds no magnetic stripe track.
devices-detail-two-swipes = two card swipes were read together: swipe the card once more.
devices-detail-track-missing = track { $track } is not in this read: swipe again or choose another track in the settings.
devices-detail-track-failed = track { $track } was read with an error: swipe the card again.
devices-detail-no-card-number = track { $track } holds no card number: choose another track in the settings.
devices-show-check = Show all (the manual line check)
