"""``python3 -m pilotlight.runtime``: the process the watchdog pre-starts (see ``_runtime``).

Kept to an entry point: run with ``-m`` this file is ``__main__``, so the runtime's state lives in
``pilotlight._runtime``, the module everything else imports.
"""

from pilotlight._runtime import main

if __name__ == "__main__":
    main()
