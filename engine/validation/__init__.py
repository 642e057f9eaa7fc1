"""One validation: ``rules/record.yaml`` compiled once per ruleset for a row and for columns.

``rules`` reads the declaration into field rules, coverage and the JSON reader; ``messages``
is the one table of messages (zh and en); ``row`` generates the validator for one household;
``columns`` (with ``byte_checks``, ``members`` and ``reasons``) checks a caseload's columns and
words each bad cell through the same rules. Importers name the module they need; this
package imports nothing itself, so ``engine.types`` can use ``messages`` without a cycle.
"""

__all__: list[str] = []
