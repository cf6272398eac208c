"""What people read when something did not go as they wanted: every error and shared notice, keyed.

Services raise errors that name a ``reason`` (``idp.errors``); views look the words up here, so one
wording serves every page that shows it and translators find them together. Labels of form fields
stay with their forms and page text with its templates.

May import: flask_babel (lazy strings only), ``idp.errors``. Must not import: the app, services, views.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from .errors import ClientDataError
from .errors import UnsafeURLError

# -- any page -------------------------------------------------------------------------------------------

STALE_FORM = _l("Страница устарела. Обновите её и повторите попытку.")
CROSS_ORIGIN_FORM = _l(
    "Форма отправлена со страницы другого сайта. Откройте эту страницу заново и повторите попытку."
)
INTERNAL_ERROR = _l("Внутренняя ошибка. Попробуйте позже.")
HTTP_ERRORS = {
    400: _l("Некорректный запрос."),
    403: _l("Доступ запрещён."),
    404: _l("Страница не найдена."),
    405: _l("Метод не поддерживается."),
    413: _l("Слишком большой запрос."),
    429: _l("Слишком много попыток. Подождите и повторите."),
    503: _l("Сервис временно недоступен. Повторите попытку через несколько минут."),
}

# -- new passwords (the reasons of services.credentials.check_new_password) -----------------------------

PASSWORD_REASONS = {
    "wrong_old": _l("Старый пароль введён неверно."),
    "mismatch": _l("Новые пароли не совпадают."),
    "too_short": _l("Пароль слишком короткий: нужно не меньше %(n)s символов."),
    "too_long": _l("Пароль слишком длинный."),
    "same_as_old": _l("Новый пароль должен отличаться от старого."),
    "common": _l(
        "Этот пароль слишком распространён или легко угадывается (например, частое слово с годом или ряд "
        "клавиш). Придумайте другой."
    ),
    "pattern": _l(
        "Пароль состоит из повторяющихся или идущих подряд символов (например, «aaaaaaaa» или «12345678»). "
        "Придумайте другой."
    ),
    "personal": _l(
        "Пароль содержит ваш логин, фамилию, имя, отчество или номер телефона. Придумайте другой."
    ),
    "service": _l(
        "Пароль содержит слово, связанное с сервисом (например, «патент», «Москва» или «госуслуги»). "
        "Придумайте другой."
    ),
}
PASSWORD_RULES = _l(
    "Не меньше %(n)s символов; лучше фраза из нескольких слов. Нельзя: распространённые и утёкшие пароли, "
    "ряды клавиш и повторы, ваши логин, фамилию, имя, отчество и телефон, слова вроде «патент» и «Москва»."
)
# The same reasons, worded for the staff console ("current" password; 12 characters).
STAFF_PASSWORD_REASONS = {
    "wrong_old": _l("Текущий пароль введён неверно."),
    "mismatch": _l("Новые пароли не совпадают."),
    "same_as_old": _l("Новый пароль должен отличаться от текущего."),
    "too_short": _l("Пароль сотрудника должен быть не короче %(n)s символов."),
    "too_long": _l("Пароль слишком длинный."),
    "common": PASSWORD_REASONS["common"],
    "pattern": PASSWORD_REASONS["pattern"],
    "personal": _l("Пароль содержит ваше имя пользователя или имя. Придумайте другой."),
    "service": PASSWORD_REASONS["service"],
}


def password_reason(reason: str, min_length: int, *, staff: bool = False) -> str:
    """The words for a refused new password (``errors.PasswordPolicyError``)."""
    reasons = STAFF_PASSWORD_REASONS if staff else PASSWORD_REASONS
    return reasons[reason] % {"n": min_length}


# -- sign-in ----------------------------------------------------------------------------------------------

LOGIN_INCOMPLETE = _l("Введите логин и пароль.")
LOGIN_FAILED = _l("Неверный логин или пароль.")
# The same words whatever the login: the waits count per address (services.signin_throttle).
SIGN_IN_WAIT = _l("Слишком много неудачных попыток входа. Попробуйте снова через %(seconds)s с.")
SIGN_IN_CAPTCHA = _l("Чтобы войти, введите также код с картинки.")
STAFF_LOGIN_INCOMPLETE = _l("Введите имя пользователя, пароль и код.")
# One message whatever was wrong: the username, the password, the code, a replayed code, a lock.
STAFF_LOGIN_FAILED = _l("Неверное имя пользователя, пароль или код.")

# -- the reset and recovery forms -------------------------------------------------------------------------

FORM_INCOMPLETE = _l("Заполните все поля.")
CAPTCHA_WRONG = _l("Код на изображении введён неверно. Введите код с новой картинки.")
CAPTCHA_GONE = _l("Код устарел. Нажмите «Обновить».")
CAPTCHA_SPEECH_DOWN = _l(
    "Прослушать код сейчас нельзя. Введите код с картинки или обратитесь в Миграционный центр."
)
# Seed wording; the same whether or not the login exists (errors.LimitError).
LIMIT_REACHED = _l("Функция сброса пароля будет доступна на следующий день")
LOGIN_INVALID = _l("Проверьте номер заявления на патент.")
PHONE_INVALID = _l("Введите номер телефона в формате +7 (9XX) XXX-XX-XX.")
RECOVERY_INPUT = {
    "empty": _l("Введите телефон, электронную почту или СНИЛС."),
    "email": _l("Проверьте адрес электронной почты."),
    "snils_checksum": _l("СНИЛС введён с ошибкой: не сходится контрольное число."),
    "unknown_kind": _l("Введите телефон, электронную почту или СНИЛС."),
}
CODE_WRONG = _l("Неверный код. Осталось попыток: %(n)s.")
RESEND_LIMIT = _l("Новый код больше отправить нельзя. Начните восстановление заново.")

# -- the staff console ------------------------------------------------------------------------------------

CONFIRM_REQUIRED = _l("Отметьте «Подтверждаю», чтобы продолжить.")
CHECK_FIELD = _l("Проверьте поле.")
ACCOUNT_ERRORS = {
    ("login", "is not a patent application number"): _l("Проверьте номер заявления на патент."),
    ("login", "is already taken"): _l("Учётная запись с таким логином уже есть."),
    ("login", "is unchanged"): _l("Это текущий логин."),
    ("phone", "is not a valid phone number"): _l("Проверьте номер телефона."),
    ("phone", "is unchanged"): _l("Это текущий телефон."),
    ("phone", "is outside [sms] allowed_country_codes"): _l(
        "На этот номер СМС не отправить: код страны не входит в разрешённые. Укажите другой телефон."
    ),
    ("snils", "has a bad checksum or format"): _l("СНИЛС введён с ошибкой: проверьте цифры."),
    ("email", "is not an e-mail address"): _l("Проверьте адрес электронной почты."),
    ("reason", "required"): _l("Укажите причину."),
}
NAME_ERROR = _l("Проверьте фамилию, имя и отчество: они обязательны, кроме отчества, и без символов < >.")
STAFF_ERRORS = {
    ("username", "format"): _l(
        "Имя пользователя: 2–64 символа, латинские буквы, цифры, точка, дефис, подчёркивание."
    ),
    ("username", "taken"): _l("Такое имя пользователя уже есть."),
    ("full_name", "format"): _l("Укажите фамилию и имя (до 200 символов)."),
    ("role", "unknown"): _l("Выберите роль."),
    ("role", "last_admin"): _l("Это последний администратор: сначала назначьте другого."),
}
CLIENT_ERRORS = {
    ("name", "required"): _l("Укажите название (до 100 символов)."),
    ("grant_types", "unknown"): _l("Выберите хотя бы один тип разрешения."),
    ("grant_types", "public_client_credentials"): _l("Публичному клиенту client_credentials недоступен."),
    ("scope", "unknown"): _l("Выберите хотя бы одну область доступа."),
    ("redirect_uris", "required"): _l("Для authorization_code нужен хотя бы один адрес возврата."),
    ("public", "fixed"): _l("Тип клиента после регистрации не меняется: зарегистрируйте новый."),
    ("public", "no_secret"): _l("У публичного клиента нет секрета."),
    ("name", "reserved"): _l(
        "Такое название (или похожее до неразличимости) у клиента, зарегистрированного администратором."
    ),
    ("subject_type", "unknown"): _l("Выберите public или pairwise."),
    ("sector_identifier_uri", "required"): _l(
        "Адреса возврата на разных хостах: для pairwise укажите sector_identifier_uri."
    ),
}
# OIDC Registration §5: the document at sector_identifier_uri (services.subjects).
CLIENT_SECTOR_ERRORS = {
    "sector_document": _l("По адресу %(uri)s не JSON-массив адресов."),
    "sector_mismatch": _l("В списке по адресу %(uri)s есть не все адреса возврата клиента."),
    "sector_unreachable": _l("Не удалось получить список по адресу %(uri)s."),
}
CLIENT_URI_ERROR = _l(
    "Адрес %(uri)s не подходит: нужен https (http — только на 127.0.0.1, ::1 или localhost), без «#»."
)
CLIENT_ORIGIN_ERROR = _l(
    "Адрес %(uri)s должен быть на том же сайте (схема, хост, порт), что и один из адресов возврата."
)
# Why the provider will not call a URI (services.outbound): the reasons of errors.UnsafeURLError.
CLIENT_OUTBOUND_ERRORS = {
    "syntax": CLIENT_URI_ERROR,
    "userinfo": _l("Адрес %(uri)s не должен содержать имя пользователя или пароль (user@host)."),
    "scheme": _l(
        "Адрес %(uri)s не подходит: нужен https. По http провайдер обращается только к 127.0.0.1, ::1 "
        "или localhost — в режиме разработки или если хост указан в [outbound] http_allowed_hosts."
    ),
    "numeric_host": _l("Адрес %(uri)s записывает IP-адрес в необычной числовой форме: укажите имя хоста."),
    "host": _l(
        "В адресе %(uri)s имя хоста записано необычно (%%-кодирование, точка в конце, зона IPv6, "
        "символы, которые IDNA заменила бы): укажите его обычной записью."
    ),
    "address": _l(
        "Адрес %(uri)s ведёт во внутреннюю или служебную сеть (%(network)s): туда провайдер не обращается."
    ),
    "internal_name": _l("Адрес %(uri)s ведёт на внутреннее имя (localhost, .local, .internal и подобные)."),
}
CLIENT_TOO_MANY = _l("Не больше %(n)s адресов.")
CLIENT_RANGE_ERROR = _l("От 60 до %(max)s секунд (больше, чем в настройках [oauth], нельзя), или пусто.")


def client_error(error: ClientDataError, *, max_uris: int, max_lifetime: int) -> str:
    """The console's words for an ``errors.ClientDataError``."""
    field, reason, value = error.field, error.reason, error.value
    if reason.startswith("uri_"):
        return CLIENT_URI_ERROR % {"uri": value}
    if reason in CLIENT_OUTBOUND_ERRORS:
        network = getattr(error.__cause__, "network", None) or ""
        return CLIENT_OUTBOUND_ERRORS[reason] % {"uri": value, "network": network}
    if reason == "origin":
        return CLIENT_ORIGIN_ERROR % {"uri": value}
    if reason in CLIENT_SECTOR_ERRORS:
        return CLIENT_SECTOR_ERRORS[reason] % {"uri": value}
    if reason == "too_many":
        return CLIENT_TOO_MANY % {"n": max_uris}
    if reason == "range":
        return CLIENT_RANGE_ERROR % {"max": max_lifetime}
    return str(CLIENT_ERRORS.get((field, reason), CHECK_FIELD))


# -- the command line (English: an operator's terminal, not a migrant's page) ----------------------------

CLI_CLIENT_FIELDS = {
    "redirect_uris": "redirect URI",
    "post_logout_redirect_uris": "post-logout redirect URI",
    "backchannel_logout_uri": "back-channel logout URI",
    "frontchannel_logout_uri": "front-channel logout URI",
    "client_uri": "home page (client_uri)",
    "sector_identifier_uri": "sector identifier URI",
}
CLI_CLIENT_REASONS = {
    "uri_syntax": "is not a URL",
    "uri_fragment": "must not contain a fragment",
    "uri_scheme": "must use https (http only on loopback)",
    "origin": "must have the scheme, host and port of a redirect URI",
    "too_many": "at most 20 of them",
    "range": "must be at least 60 seconds and at most [oauth]'s",
    "fixed": "public or confidential is fixed at registration",
    "unknown": "has a value that is not supported",
    "sector_document": "is not a JSON array of URIs",
    "sector_mismatch": "does not list every redirect URI of the client",
    "sector_unreachable": "could not be fetched",
}
CLI_CLIENT_ERRORS = {
    ("name", "required"): "name is required (at most 100 characters)",
    ("grant_types", "unknown"): "grant types are missing or not supported (see --help)",
    ("grant_types", "public_client_credentials"): "a public client cannot use client_credentials",
    ("auth_method", "needs_new_secret"): (
        "this authentication method needs a new client secret (issue one first)"
    ),
    ("jwks", "required"): "private_key_jwt needs the client's keys: --jwks or --jwks-uri",
    ("jwks", "both"): "give either --jwks or --jwks-uri, not both (RFC 7591 §2)",
    ("jwks", "invalid"): "the JWK Set must hold 1 to 20 public keys (no private or symmetric ones)",
    ("scope", "unknown"): "scopes are missing or not supported (see scopes_supported in discovery)",
    ("redirect_uris", "required"): "at least one redirect URI is needed",
    ("name", "reserved"): "an admin registered a client of that name (or one that looks the same)",
    ("sector_identifier_uri", "required"): "pairwise with redirect URIs on several hosts needs "
    "--sector-identifier-uri",
}


def cli_client_error(error: ClientDataError) -> str:
    """The command line's words for an ``errors.ClientDataError`` (``idp clients create|update``)."""
    field, reason, value = error.field, error.reason, error.value
    subject = CLI_CLIENT_FIELDS.get(field, field)
    if isinstance(error.__cause__, UnsafeURLError):
        return f"{subject} {value!r} {error.__cause__.explanation}"
    if (field, reason) in CLI_CLIENT_ERRORS:
        return CLI_CLIENT_ERRORS[field, reason]
    text = CLI_CLIENT_REASONS.get(reason, reason)
    return f"{subject} {value!r} {text}" if value else f"{subject}: {text}"


# An authorization request we cannot send back to the relying party (RFC 6749 §4.1.2.1: unknown client or
# redirect URI) is explained on our page in the page's language; authlib's English error_description is
# for programs and is not shown. The error code stays, for the person to quote to support.
OAUTH_ERRORS = {
    "invalid_client": _l(
        "Сайт, с которого вы пришли, у нас не зарегистрирован или отключён. Вернитесь на него и сообщите об "
        "этом его владельцам."
    ),
    "unauthorized_client": _l(
        "Сайт, с которого вы пришли, у нас не зарегистрирован или отключён. Вернитесь на него и сообщите об "
        "этом его владельцам."
    ),
}
OAUTH_ERROR_DEFAULT = _l(
    "Сайт, с которого вы пришли, отправил неверный запрос. Вернитесь на него и попробуйте ещё раз."
)
