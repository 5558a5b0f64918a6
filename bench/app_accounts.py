"""The app accounts a bench's agents make (`slipway-<app>`, one per app), so the bench can remove
those it made: an agent run as root adds one to /etc/passwd for every app it deploys."""
import pwd, subprocess


def app_accounts():
    """The `slipway-*` accounts there are now (the agent makes one per app it runs)."""
    return {entry.pw_name for entry in pwd.getpwall() if entry.pw_name.startswith("slipway-")}


def remove_accounts(before):
    """Removes the app accounts this run's agents made (those that were not there before it)."""
    for name in sorted(app_accounts() - before):
        subprocess.run(["userdel", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["groupdel", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
