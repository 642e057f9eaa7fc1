"""One household, compiled: a ruleset's plan turned once into generated Python source.

``exprs`` compiles IR expressions to source text (user strings only as ``repr()`` literals),
``walk`` finds each definition's dependencies and what may fail, ``defs`` emits one block
per definition, ``program`` assembles and compiles the household function.
"""

from engine.codegen.program import Program, TooLargeToCompile, compile_ruleset

__all__ = ["Program", "TooLargeToCompile", "compile_ruleset"]
