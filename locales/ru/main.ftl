# Строки интерфейса кассы (русский — язык по умолчанию).
# Суммы приходят уже отформатированными: «1 234,50».

back = Назад
cancel = Отмена
menu = Меню
menu-language = Язык
menu-layout = Окно
menu-on-top = Поверх других окон
menu-export-logs = Отправка логов
menu-back-office = Управление программой
export-what = В архив попадут логи, настройки без паролей и список устройств; телефоны и номера карт скрыты.
export-folder = Папка для архива
export-save = Сохранить
export-save-upload = Сохранить и отправить
export-collecting = Собираю логи…
export-saving = Сохраняю архив…
export-uploading = Отправка в поддержку: { $sent } из { $total } КБ
export-waiting = Архив отправлен, жду ответа поддержки…
export-not-started = Не удалось начать: { $reason }
export-saved = Архив сохранён: { $path }
export-saved-elsewhere = В выбранную папку сохранить не удалось: { $reason }. Архив сохранён здесь: { $path }
export-not-saved = Архив не сохранён: { $reason }.
export-not-saved-fallback = Запасная папка тоже не подошла: { $reason }.
export-not-built = Архив не удалось собрать: { $reason }
export-logs-untouched = Логи не пострадали, они в папке { $dir }. Выберите другую папку и нажмите «Сохранить» ещё раз.
export-sent = Архив отправлен в поддержку.
export-sent-reply = Ответ поддержки: { $reply }
export-upload-failed = В поддержку отправить не удалось: { $reason }.
export-upload-failed-kept = В поддержку отправить не удалось: { $reason }. Архив остался на компьютере: { $path }
export-error-no-permission = нет прав на запись в папку { $dir }
export-error-disk-full = на диске не хватает места ({ $dir })
export-error-not-a-folder = { $dir } — не папка
export-error-other = ошибка записи в папку { $dir }: { $detail }
export-upload-bad-url = адрес поддержки в настройках неверный ({ $detail })
export-upload-no-tls = адрес поддержки начинается с https://, а программа отправляет только по http://
export-upload-unreachable = сервер поддержки { $host } недоступен
export-upload-timeout = сервер поддержки не ответил вовремя
export-upload-rejected = сервер поддержки не принял архив (HTTP { $status })
menu-close = Закрыть меню
not-built-yet = Ещё не готово
lang-ru = Русский
lang-en = English
layout-side = Боковая панель
layout-full = Весь экран
notice-dismiss = Скрыть сообщение

keypad-backspace = Стереть
keypad-clear = Очистить
keypad-backspace-short = ‹
keypad-letters = Буквы A–Z
keypad-digits = Цифры 0–9

idle-brand-hint = Нажмите, чтобы добавить гостя: отсканируйте QR-код или введите код карты.

order-title = Заказ
order-empty = В заказе нет позиций
order-total = Итого
order-edit = Сумма чека
order-demo = Демо-заказ
order-gift-points = подарок · { $points } б.
order-line-hint = Введите цену позиции и нажмите «Добавить позицию».
order-line-placeholder = Цена, ₽
order-add-line = Добавить позицию
order-clear = Очистить заказ
order-done = Готово

add-guest-title = Добавление гостя
add-guest-hint = Отсканируйте QR-код гостя или подарка, либо введите код с карты или номер телефона.
add-guest-placeholder = Код карты или телефон
add-guest-find = Найти гостя
add-guest-paste = QR из буфера обмена
add-guest-searching = Поиск гостя…

guest-balance = Бонусы
guest-available = Доступно к списанию
guest-group = Группа
guest-group-value = { $group } · скидка { $discount } %
guest-visits-left = Визитов на сегодня
guest-visits-left-value = осталось { $left } из { $limit }
guest-promotions = Акции
guest-promotions-count = { $count ->
    [0] нет
    [one] { $count } акция
    [few] { $count } акции
   *[other] { $count } акций
}
guest-stamps = Информация о штампах
guest-check-promotions = Проверка акций
guest-pay = Касса
guest-remove = Удалить гостя
guest-remove-question = Удалить гостя { $name } из заказа?
guest-remove-yes = Да, удалить
guest-remove-no = Нет

stamps-title = Информация о штампах
stamps-none = У программы нет карт штампов.
stamps-progress = { $collected } из { $needed }
stamps-reward = Награда: { $reward }
stamps-reward-ready = Награда готова: { $reward }

promotions-title = Проверка акций
promotions-none = Сейчас нет действующих акций.
promotions-until = Действует до { $date }

replace-title = Гость уже добавлен
replace-question = К заказу уже добавлен гость { $name }. Заменить его гостем { $new }?
replace-yes = Заменить гостя
replace-no = Оставить текущего

payment-calculating = Расчёт бонусов…
payment-choice-title = Оплата
payment-subtotal = Сумма заказа
payment-discount = Скидка группы
payment-due = К оплате
payment-gift = Подарок: { $gift } — выдаётся с этим чеком
payment-keep = Копить бонусы (начислится { $accrual })
payment-spend = Списать бонусы (до { $max })
payment-nothing-to-spend = Списать бонусы сейчас нельзя:
payment-keep-title = Оплата с начислением бонусов
payment-spend-title = Оплата бонусами
payment-max = Максимум к списанию: { $max }
payment-spend-label = Списать бонусов
payment-preset-max = Максимум
payment-preset-half = Половина
payment-preset-zero = 0,00
payment-amount-placeholder = 0,00
payment-remainder = Остаток к оплате
payment-accrual = Будет начислено
payment-accrual-preview = Будет начислено бонусов: { $accrual }
payment-tendered-label = Получено от гостя
payment-exact = Точная сумма
payment-change = Сдача
payment-confirm = Провести оплату
tender-cash = Наличные
tender-card = Карта

limits-title = Максимум — наименьшее из:
limit-available = Доступный баланс
limit-check-percent = { $percent } % от суммы к оплате
limit-daily = Остаток дневного лимита
limit-amount-due = Сумма к оплате
limit-step = Бонусы списываются кратно { $step }

processing-hold = Резервирование бонусов…
processing-commit = Проведение оплаты…
processing-void = Отмена резерва бонусов…

done-title = Оплата проведена
done-spent-accrued = Списано { $spent } бонусов, начислено { $accrued }
done-accrued = Начислено { $accrued } бонусов
done-balance = Баланс гостя
done-gift = Подарок выдан: { $gift }
done-new-group = Гость переведён в группу «{ $group }»
done-new-order = Новый заказ
done-title-provisional = Чек закрыт без связи с сервером
done-provisional-note = Предварительно: сервер лояльности проведёт операцию со временем этого чека, когда связь вернётся. Баланс может измениться.
done-balance-provisional = Баланс гостя (предварительно)
done-accrued-provisional = Начисление { $accrued } бонусов сохранено на кассе и будет отправлено на сервер (предварительно)
done-spent-accrued-provisional = Списано { $spent } бонусов, начислено { $accrued }: сохранено на кассе и будет отправлено на сервер (предварительно)

info-wait = Подождите, идёт операция…
info-guest-removed = Гость удалён из заказа
info-payment-cancelled = Оплата бонусами отменена, резерв снят
info-payment-cancelled-nothing-held = Оплата бонусами отменена, бонусы не списывались и не резервировались
info-gift-added = Подарок «{ $gift }» добавлен в заказ
info-gift-already-in-order = Этот подарок уже в заказе

err-no-guest = Сначала добавьте гостя
err-code-empty = Введите код карты, отсканируйте QR-код или введите телефон
err-code-too-long = Код слишком длинный (больше { $max } символов). Проверьте сканер или введите код заново.
err-unknown-code = Гость с таким кодом не найден. Проверьте код и попробуйте ещё раз.
err-gift-used = Этот подарок уже получен
err-guest-blocked = Гость заблокирован в управлении программой
err-daily-ops-limit = Гость уже сделал сегодня все покупки, которые позволяет его группа ({ $limit }). Попробуйте завтра.
err-finish-payment-first = Сначала завершите или отмените оплату
err-order-empty = В заказе нет позиций: введите сумму чека
err-amount-empty = Введите сумму
err-amount-not-number = Сумма должна состоять из цифр, например 150 или 150,50
err-amount-decimals = В сумме не больше двух знаков после запятой
err-amount-too-large = Сумма слишком большая
err-amount-zero = Сумма должна быть больше нуля
err-over-max = Нельзя списать больше { $max } бонусов
err-spend-step = Бонусы списываются только кратно { $step }: уберите копейки
err-tendered-short = Получено меньше остатка к оплате ({ $remainder }). Нажмите «Точная сумма» или введите сумму.
err-hold-lost = Резерв бонусов истёк или отменён. Проведите оплату заново.
err-ledger-refused = База бонусов отклонила операцию. Проведите оплату заново.
err-offline-unknown-guest = Нет связи с сервером лояльности, и этого гостя не находили на этой кассе недавно. Закройте чек без бонусов.
err-offline-no-spending = Нет связи с сервером лояльности: списать бонусы нельзя. Ничего не списано и не зарезервировано. Нажмите «Отмена» и выберите «Копить бонусы»: начисление отправится позже.
err-token-refused = Сервер лояльности не принимает токен этой кассы. Закройте чек без бонусов и сообщите администратору: нужен новый токен в config.toml.
err-backend-unavailable = База бонусов недоступна. Оплатите без бонусов или повторите позже.
err-storage = Ошибка базы бонусов. Операция не проведена; сообщите в поддержку.

err-scan-garbled = Сканер прислал непонятные данные. Проверьте настройки сканера и отсканируйте ещё раз.
err-swipe-again = Карта не прочиталась. Проведите картой ещё раз.
err-qr-forged = QR-код не прошёл проверку подписи. Попросите гостя открыть код в приложении заново.
err-qr-expired = QR-код устарел. Попросите гостя обновить код в приложении.
err-qr-clock = QR-код выписан «в будущем»: проверьте дату и время на кассе.
err-qr-no-key = Касса не может проверить QR-код приложения: в настройках не задан ключ программы. Введите код карты вручную.
err-qr-unknown = Этот QR-код или штрихкод не относится к программе лояльности.
err-clipboard-empty = В буфере обмена нет ни картинки, ни текста. Скопируйте QR-код гостя и нажмите ещё раз.
err-clipboard-no-qr = На картинке из буфера обмена не найден QR-код. Скопируйте QR крупнее и чётче.
status-device-connected = { $device }: на связи
status-device-lost = { $device }: нет связи
status-device-reopening = { $device }: переподключение…

status-starting = Подключение к базе бонусов…
status-embedded = Встроенная база: { $path }
status-server = Сервер лояльности: { $url }
status-offline = Нет связи с сервером лояльности с { $since } ({ $url }): начисления сохраняются и будут отправлены
status-token-refused = Сервер лояльности ({ $url }) не принимает токен кассы: нужен новый токен (loyalty-till till-token create) в config.toml, [server] token; сообщите администратору
status-failed = База недоступна: { $reason }
status-demo = ДЕМО

## Devices screen
devices-menu = Устройства: сканеры и ридеры
devices-title = Устройства
devices-refresh = Обновить список
devices-close = Закрыть
devices-searching = Поиск устройств…
devices-detect-not-started = Поиск устройств не запустился. Закройте экран и откройте снова; подробности в журнале.
devices-detect-no-list = Поиск устройств прервался. Нажмите «Обновить список»; подробности в журнале.
devices-found = Найденные устройства
devices-tap-hint = Нажмите на устройство, чтобы выбрать его роль.
devices-none = Устройства не найдены
devices-none-hint = Подключите сканер или ридер карт и нажмите «Обновить список». Сканер в режиме USB-COM виден как COM-порт, в режиме HID POS или клавиатуры — как HID-устройство.
devices-list-serial = COM-порты
devices-list-hid = HID-устройства
devices-list-usb = USB-устройства
devices-list-unavailable = { $list }: список недоступен на этом компьютере (подробности в журнале)
devices-row = { $device }: { $role }
devices-kind-serial = COM-порт
devices-kind-keyboard = Режим клавиатуры (HID-клавиатура)
devices-kind-hid-scanner = HID POS-сканер (страница 0x8C)
devices-kind-hid-card-reader = HID POS-ридер магнитных карт (страница 0x8E)
devices-kind-hid = HID-устройство, страница { $page }
devices-kind-hid-unknown = HID-устройство
devices-usb = USB { $ids }
devices-usb-serial = USB { $ids }, серийный номер { $serial }
devices-not-present = Сейчас не найдено в системе; настройка хранится в config.toml.
devices-status-connected = Порт открыт, устройство читается.
devices-status-lost = Нет связи с устройством: проверьте кабель (подробности в журнале).
devices-status-reopening = Переподключение…
devices-keyboard-windows-only = Режим клавиатуры читается только в Windows; здесь настройка только сохраняется.
devices-role = Роль
devices-role-scanner = Сканер
devices-role-card-reader = Ридер карт
devices-role-ignore = Не использовать
devices-baud = Скорость, бод
devices-terminator = Конец чтения
devices-terminator-cr = CR
devices-terminator-lf = LF
devices-terminator-cr-lf = CR LF
devices-terminator-etx = ETX
devices-terminator-idle = Пауза
devices-other-usb = Другие USB-устройства
devices-other-usb-hint = Не COM-порт и не HID: касса их не читает. Переведите сканер в режим USB-COM или HID POS (см. его инструкцию).
devices-test-title = Проверка чтения
devices-test-hint = Пока экран открыт, чтения только показываются здесь и гостя не ищут. Номера карт и телефоны скрыты; символ конца чтения (CR, LF, ETX) уже отрезан.
devices-test-empty = Отсканируйте код или проведите картой: чтение появится здесь.
devices-test-read = { $source }, { $len } { $len ->
    [one] байт
    [few] байта
   *[many] байт
}
devices-test-typed = Введённая строка, { $len } { $len ->
    [one] байт
    [few] байта
   *[many] байт
}
devices-masked-track1 = дорожка 1 скрыта
devices-masked-track2 = дорожка 2 скрыта
devices-masked-token = токен скрыт
devices-test-parsed = Разобрано: { $kind }, код { $code }
devices-test-refused = Не принято: { $reason }
devices-test-detail = Подробности: { $detail }
devices-test-dropped = { $source }: отброшено { $dropped } { $dropped ->
    [one] байт
    [few] байта
   *[many] байт
} ({ $reason })
devices-kind-card-code = код карты (штрихкод)
devices-kind-qr = QR-код
devices-kind-guest-token = QR-код гостя из приложения
devices-kind-gift-token = QR-код подарка из приложения
devices-kind-magnetic = магнитная карта
devices-drop-noise = помехи перед чтением
devices-drop-too-long = слишком длинное чтение
devices-drop-incomplete = чтение оборвалось, не пришёл символ конца
devices-drop-bad-report = HID-отчёт не совпадает с описанием устройства
devices-error-too-long = чтение длиной { $len } байт, допустимо не больше { $max }.
devices-error-not-utf8 = это не текст (неверный байт на позиции { $at }): проверьте настройки устройства.
devices-error-empty = пустое чтение.
devices-typed-title = Проверить строку вручную
devices-typed-hint = Для специалиста: строка в том виде, в каком её присылает устройство. Служебные символы вводятся так: \r — CR, \n — LF, \t — табуляция, \\ — обратная черта, \x03 — байт с кодом 03.
devices-typed-placeholder = например %B…?;…?\r
devices-typed-check = Разобрать строку
devices-typed-error-trailing = Ошибка в строке: в конце стоит одиночная «\». Чтобы ввести саму обратную косую черту, напишите \\.
devices-typed-error-unknown = Ошибка в строке: неизвестная последовательность «\{ $found }» на позиции { $at }. Допустимы \r, \n, \t, \\ и \xNN.
devices-typed-error-hex = Ошибка в строке: после «\x» на позиции { $at } нужны две шестнадцатеричные цифры, например \x03.
devices-show-all = Показать все ({ $count } { $count ->
    [one] порт без устройства
    [few] порта без устройств
   *[many] портов без устройств
} и ручная проверка строки)
devices-show-less = Скрыть порты без устройств и ручную проверку
devices-source-keyboard = клавиатура
devices-source-clipboard = буфер обмена
devices-detail-no-track = в чтении нет дорожек магнитной полосы.
devices-detail-two-swipes = две карты прочитаны подряд: проведите карту ещё раз.
devices-detail-track-missing = дорожки { $track } нет в этом чтении: проведите карту ещё раз или выберите другую дорожку в настройках.
devices-detail-track-failed = дорожка { $track } прочитана с ошибкой: проведите карту ещё раз.
devices-detail-no-card-number = на дорожке { $track } нет номера карты: выберите другую дорожку в настройках.
devices-show-check = Показать все (ручная проверка строки)

## Back office (web pages under /admin)
bo-title = Управление программой
bo-nav-guests = Гости
bo-nav-groups = Группы
bo-nav-programme = Программа
bo-logout = Выйти
bo-role-owner = владелец
bo-role-manager = менеджер
bo-login = Логин
bo-password = Пароль
bo-sign-in = Вход
bo-login-hint = Учётную запись создаёт команда «loyalty-till owner create --login ИМЯ». Пароля по умолчанию нет.
bo-back = К списку гостей
bo-error-title = Не выполнено
bo-search = Найти
bo-search-hint = Имя, телефон или номер карты
bo-new-guest = Новый гость
bo-no-guests = Гостей не найдено.
bo-name = Имя
bo-no-name = (без имени)
bo-phone = Телефон
bo-group = Группа
bo-balance = Баланс
bo-available = Доступно
bo-card = Карта
bo-card-hint = Отсканируйте или введите код
bo-create = Создать
bo-prev = Назад
bo-next = Дальше
bo-since = Гость с
bo-manual = Начислить или списать вручную
bo-credit = Начислить
bo-debit = Списать
bo-amount = Сумма, ₽
bo-reason = Причина (обязательно)
bo-apply = Провести
bo-holds = Открытые холды
bo-no-holds = Открытых холдов нет.
bo-hold-created = Создан
bo-hold-expires = Истекает
bo-till = Касса
bo-reset-holds = Сбросить холды
bo-reset-holds-hint = Освобождает все открытые холды гостя (если отмена с кассы потерялась).
bo-identifiers = Идентификаторы
bo-add = Добавить
bo-history = История операций
bo-no-history = Операций пока нет.
bo-when = Когда
bo-operation = Операция
bo-check = Чек
bo-balance-after = Баланс после
bo-note = Примечание
bo-done-manual = Операция проведена.
bo-done-holds = Холды сброшены.
bo-done-identifier = Идентификатор добавлен.
bo-op-accrual = Начисление за чек
bo-op-spend = Оплата бонусами
bo-op-manual-credit = Начисление вручную
bo-op-manual-debit = Списание вручную
bo-op-refund-spend = Возврат: бонусы вернулись
bo-op-refund-accrual = Возврат: начисление отменено
bo-kind-card-barcode = Карта (штрих-код)
bo-kind-magnetic-stripe = Карта (магнитная полоса)
bo-kind-manual-code = Код (ручной ввод)
bo-kind-app-qr = Приложение (QR)
bo-kind-phone = Телефон
bo-groups-hint = Гость переходит в группу с более высоким рангом, когда его траты за период достигают порога. Ранг 0 — группа только для ручного назначения.
bo-new-group = Новая группа
bo-group-name = Название
bo-group-rank = Ранг
bo-group-rank-hint = (1, 2, 3…; у большего ранга порог выше)
bo-group-threshold = Порог трат, ₽
bo-group-discount = Скидка, %
bo-group-accrual = Начисление, %
bo-group-never-downgrade = Не понижать
bo-group-daily-ops = Операций в день (0 — без ограничения)
bo-group-daily-spend = Списание в день, ₽ (0 — без ограничения)
bo-save = Сохранить
bo-saved = Сохранено.
bo-prog-name = Название программы
bo-prog-max-check = Бонусами можно оплатить до, % чека
bo-prog-spend-step = Шаг списания, ₽
bo-prog-hold-minutes = Время холда, минут
bo-prog-group-days = Период трат для групп, дней
bo-prog-utc-offset = Смещение от UTC, минут (Москва: 180)
bo-prog-not-built = Ещё не сделано: приветственный бонус, запись гостей на кассе, штамп-карты, акции, подарки, импорт и экспорт, отчёты, токены касс, журнал изменений.
bo-err-csrf = Форма устарела или пришла не с этой страницы. Откройте страницу заново и повторите.
bo-err-locked = Слишком много неудачных попыток входа. Подождите минуту.
bo-err-login = Неверный логин или пароль.
bo-err-storage = Не удалось выполнить: ошибка базы данных. Повторите позже; подробности в журнале.
bo-err-owner-only = Эта страница доступна только владельцу.
bo-err-phone-taken = Этот телефон уже принадлежит другому гостю.
bo-err-card-taken = Этот код уже принадлежит другому гостю.
bo-err-threshold-clash = Порог или ранг совпадает с группой «{ $group }» или нарушает порядок: у большего ранга порог должен быть выше.
bo-err-over-available = Можно списать не больше { $max } ₽ (доступно сейчас).
bo-err-amount = Введите сумму больше нуля, например 150 или 150,50.
bo-err-out-of-range = Значение вне допустимых пределов.
bo-err-bad-code = Код пустой, слишком длинный или содержит недопустимые символы.
bo-err-not-found = Не найдено.
bo-err-op-conflict = Эта форма уже была отправлена с другими данными. Откройте страницу заново.
bo-err-op-id = Форма повреждена. Откройте страницу заново.
bo-err-name = Название или имя: до 200 символов, название группы обязательно.
bo-err-kind = Неизвестный тип.
bo-err-phone-or-card = Укажите телефон или карту: иначе гостя не найти на кассе.
bo-err-group = Выберите группу.
bo-err-no-groups = Сначала создайте хотя бы одну группу (Группы).
bo-err-reason = Укажите причину (до 200 символов).
bo-err-number = Введите целое число.
bo-err-percent = Введите процент от 0 до 100.
bo-err-hold-minutes = Время холда: от 1 до 1440 минут.
bo-blocked = Гость заблокирован: касса его не находит и не списывает бонусы.
bo-block = Заблокировать
bo-unblock = Разблокировать
bo-done-blocked = Статус блокировки изменён.
bo-err-blocked = Гость заблокирован.

## Ответы официантам на терминалах iikoWaiter (WaiterMessage)
waiter-wrong-pin = Неверный ПИН официанта. Гость не привязан.
waiter-no-pin = iikoWaiter не передал ПИН официанта. Гость не привязан.
waiter-pin-locked = Слишком много неверных ПИН-кодов с этого терминала. Повторите через { $minutes } мин.
waiter-bad-order = Касса не узнала номер заказа. Откройте заказ заново и повторите.
waiter-bad-request = Касса не поняла запрос iikoWaiter. Проверьте адрес сервера в настройках External Loyalty.
waiter-too-large = Запрос слишком большой: отсканированный код длиннее, чем бывает у карт и QR-кодов гостей.
waiter-wrong-host = Этот адрес кассы не разрешён. Укажите в iikoWaiter адрес из настроек кассы.
waiter-not-found = Касса не знает такого адреса. Проверьте путь (например, /GetMeBack) в настройках External Loyalty.
waiter-other-guest = К заказу уже привязан другой гость. Сначала сделайте чекаут.
waiter-other-guests-gifts = В заказе уже есть подарки другого гостя: гостя нельзя привязать к этому заказу.
waiter-gift-on-other-order = Этот подарок уже добавлен в другой заказ.
waiter-not-checked-in = К заказу не привязан гость.

## The POS on the till's endpoint
pos-unauthorized = Неверный или отсутствующий токен кассы (POS).
pos-locked = Слишком много неверных токенов с этого адреса. Повторите позже.
pos-unknown-order = Касса не знает этот заказ.
pos-hold-void = Резерв бонусов снят (время вышло, заказ изменён или отменён): уберите оплату бонусами из чека.
pos-revision-mismatch = Оплачена не та версия заказа, для которой посчитан результат.
pos-already-paid = Заказ уже оплачен.
pos-order-closed = Заказ отменён.
pos-no-guest = На заказе нет гостя.
pos-over-hold = Оплата бонусами больше, чем зарезервировано.
pos-no-call-id = В запросе нет Idempotency-Key.
pos-bad-request = Касса не поняла запрос POS.
pos-bad-order = Заказ от POS не сходится: сумма строк не равна итогу или строка неверна.
pos-too-large = Запрос POS слишком большой.
pos-call-id-reused = Этот Idempotency-Key уже использован для другого запроса.
pos-returns-not-built = Возвраты от POS пока не поддерживаются: бонусы не пересчитаны.
pos-order-title = Заказ POS № { $number }
pos-order-table = Стол { $table }
pos-order-total = Итого по заказу POS
pos-order-held = Зарезервировано бонусов: { $amount }
pos-connected-hint = Заказ пришёл с кассы (POS); ввод суммы вручную не нужен.
pos-held-wait = Зарезервировано бонусов: { $amount }. Добавьте оплату бонусами в чек на кассе: бонусы спишутся, когда касса закроет чек.
pos-guest-bound = Гость привязан к заказу POS. Бонусы начислятся, когда касса закроет чек.
pos-order-closed-on-pos = Касса закрыла заказ: гость снят.
pos-not-running = Связь с кассой (POS) не запущена: проверьте pos_token в [handhelds].
