"""Front-ends and process wiring: the composition root.

Every process enters through this package, so it loads httpx and redis here, before
any module imports them, without the extras they would load and we never use
(bot.lean_imports).
"""

from bot import lean_imports

lean_imports.load()
