"""Human names for what the audit log records, and the rows the log and an account's history show."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...models import AuditEvent
from .common import when

EVENTS = {
    "account.signed_in": _l("Вход в личный кабинет"),
    "account.reset_sent": _l("Новый пароль отправлен по СМС"),
    "account.recovery_texted": _l("Код восстановления доступа отправлен по СМС"),
    "account.recovery_mailed": _l("Ссылка для восстановления доступа отправлена на почту"),
    "account.recovered": _l("Пароль установлен через восстановление доступа"),
    "account.password_changed": _l("Владелец сменил пароль"),
    "account.created": _l("Учётная запись создана"),
    "account.temporary_password": _l("Выдан временный пароль"),
    "account.login_changed": _l("Логин изменён"),
    "account.phone_changed": _l("Телефон изменён"),
    "account.blocked": _l("Учётная запись заблокирована"),
    "account.unblocked": _l("Учётная запись разблокирована"),
    "account.lock_lifted": _l("Снята блокировка после неверных паролей"),
    "account.signed_out": _l("Все сеансы завершены"),
    "client.created": _l("Клиент зарегистрирован"),
    "client.updated": _l("Клиент изменён"),
    "client.secret_rotated": _l("Секрет клиента заменён"),
    "client.enabled": _l("Клиент включён"),
    "client.disabled": _l("Клиент отключён"),
    "client.deleted": _l("Клиент удалён"),
    "keys.rotated": _l("Ключи подписи заменены"),
    "keys.retired": _l("Ключ подписи выведен из JWKS"),
    "staff.signed_in": _l("Сотрудник вошёл"),
    "staff.signed_out": _l("Сотрудник вышел"),
    "staff.password_changed": _l("Сотрудник сменил пароль"),
    "staff.created": _l("Сотрудник добавлен"),
    "staff.role_changed": _l("Роль сотрудника изменена"),
    "staff.enabled": _l("Сотрудник включён"),
    "staff.disabled": _l("Сотрудник отключён"),
    "staff.credentials_reset": _l("Сотруднику выданы новые пароль и ключ TOTP"),
    "registration.token_issued": _l("Выдан токен регистрации"),
    "registration.token_revoked": _l("Токен регистрации отозван"),
    "account.sign_in_failed": _l("Неудачная попытка входа"),
    "account.locked": _l("Учётная запись заблокирована после неверных паролей"),
    "account.logged_out": _l("Владелец вышел"),
    "account.session_ended": _l("Владелец завершил сеанс на устройстве"),
    "account.signed_out_everywhere": _l("Владелец вышел на всех устройствах"),
    "account.viewed": _l("Данные учётной записи просмотрены в консоли сервера"),
    "consent.granted": _l("Сайту разрешён доступ к данным"),
    "consent.denied": _l("Сайту отказано в доступе к данным"),
    "consent.revoked": _l("Владелец отозвал доступ сайта"),
    "staff.sign_in_failed": _l("Неудачная попытка входа сотрудника"),
    "staff.locked": _l("Сотрудник заблокирован после неверных попыток"),
    "keys.created": _l("Созданы первые ключи подписи"),
    "demo.prepared": _l("Подготовлена демонстрация"),
    "outbox.retried": _l("Сообщения очереди отправлены повторно"),
    "outbox.delivered": _l("Очередь сообщений доставлена вручную"),
    "outbox.purged": _l("Старые сообщения очереди удалены"),
    "maintenance.purged": _l("Очистка устаревших данных"),
    "audit.exported": _l("Журнал выгружен"),
}

# Where a password was checked, when not on the sign-in form.
DURING = {
    "step_up": _l("повторный ввод пароля"),
    "password_change": _l("смена пароля"),
}

# What failed, in a failed sign-in's details (InvalidCredentialsError.result).
RESULTS = {
    "unknown": _l("неизвестный логин"),
    "wrong_password": _l("неверный пароль"),
    "wrong_code": _l("неверный код"),
    "locked": _l("заблокирована после неверных паролей"),
    "inactive": _l("заблокирована или отключена"),
    "expired": _l("истёк временный пароль"),
}

ACTOR_TYPES = {
    "staff": _l("сотрудник"),
    "account": _l("владелец учётной записи"),
    "anonymous": _l("посетитель"),
    "client": _l("клиент"),
    "initial_token": _l("токен регистрации"),
    "cli": _l("консоль сервера"),
}


# Names for the details staff actions record. Client metadata keeps its RFC 7591 names (redirect_uris,
# grant_types, …), which is what admins register and read in the protocol's documentation.
DETAILS = {
    "username": _l("сотрудник"),
    "role": _l("роль"),
    "login": _l("логин"),
    "old": _l("было"),
    "new": _l("стало"),
    "name": _l("название"),
    "label": _l("метка"),
    "kid": _l("ключ"),
    "kids": _l("ключи"),
    "immediate": _l("сразу"),
    "single_use": _l("одноразовый"),
    "expires_at": _l("действует до"),
    "public": _l("публичный"),
    "trusted": _l("доверенный"),
    "result": _l("что не так"),
    "user_agent": _l("браузер"),
    "during": _l("где"),
    "browser": _l("браузер"),
    "system": _l("система"),
    "sessions": _l("сеансов"),
    "scope": _l("доступ"),
}


def event_rows(events: list[AuditEvent], *, logins: dict[int, str] | None = None) -> list[dict]:
    """Ready-to-show rows: local time, the event's name, who acted from where, why, and what changed."""
    rows = []
    for event in events:
        details = event.details or {}
        rows.append(
            {
                "when": when(event.at),
                "event": EVENTS.get(event.event, event.event),
                "actor": _actor(event),
                "ip": event.ip or "",
                "account": (logins or {}).get(event.account_id, "") if event.account_id else "",
                "account_id": event.account_id,
                "client_id": event.client_id or "",
                "reason": event.reason or "",
                "details": ", ".join(_detail(key, value) for key, value in sorted(details.items())),
            }
        )
    return rows


def _actor(event: AuditEvent) -> str:
    kind = str(ACTOR_TYPES.get(event.actor_type, event.actor_type))
    return f"{kind} {event.actor_name}" if event.actor_name else kind


def _detail(key: str, value) -> str:
    if key == "expires_at" and isinstance(value, int):
        shown = when(value)
    elif key == "result" and value in RESULTS:
        shown = str(RESULTS[value])
    elif key == "during" and value in DURING:
        shown = str(DURING[value])
    else:
        shown = _show(value)
    return f"{DETAILS.get(key, key)}: {shown}"


def _show(value) -> str:
    if isinstance(value, bool):
        return _("да") if value else _("нет")
    if isinstance(value, list):
        return " ".join(str(item) for item in value) or "—"
    if value is None or value == "":
        return "—"
    return str(value)
