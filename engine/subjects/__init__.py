"""Record types besides the household: a subject matched against registries of dated findings.

A ruleset declares them in ``ruleset.yaml`` (``record_types``); each is one rule file read
(``spec``) into the typed plan as an ``engine.plan_records.RecordType`` (``RecordTypeSpec``
here), its records validated (``record``), decided by evaluating the plan's expressions
(``evaluate``) and explained (``explain``). Nothing here names a particular record type. These records are few
(thousands a review round), so bulk screening decides them one by one with this same
evaluator: there is one implementation to trust, and no kernel to keep in agreement.
"""

from .evaluate import SubjectDecision, SubjectEvaluator
from .explain import explain_text
from .record import SubjectRegistry, parse_subject_registry, registry_from_rows, validate
from .spec import RecordTypeSpec, read_record_type

__all__ = [
    "RecordTypeSpec",
    "SubjectDecision",
    "SubjectEvaluator",
    "SubjectRegistry",
    "explain_text",
    "parse_subject_registry",
    "read_record_type",
    "registry_from_rows",
    "validate",
]
