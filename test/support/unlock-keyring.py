"""Unlocks gnome-keyring's login collection inside the running keyring process, as a desktop's unlock
prompt does: the master password (on stdin) through gnome-keyring's own unlock method. Used by
test/support/private-keyring.ts. Needs python3-dbus."""
import sys

import dbus

password = sys.stdin.read()
bus = dbus.SessionBus()
service = bus.get_object('org.freedesktop.secrets', '/org/freedesktop/secrets')
_, session = service.OpenSession('plain', dbus.String('', variant_level=1), dbus_interface='org.freedesktop.Secret.Service')
internal = dbus.Interface(service, 'org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface')
secret = dbus.Struct((session, dbus.ByteArray(b''), dbus.ByteArray(password.encode()), 'text/plain'), signature='oayays')
internal.UnlockWithMasterPassword(dbus.ObjectPath('/org/freedesktop/secrets/collection/login'), secret)
