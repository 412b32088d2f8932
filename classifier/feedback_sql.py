"""The feedback table's name and the precision query: shared by the API (``feedback.py``) and the
incidents dashboard, which imports this module alone (no classifier dependencies)."""
from __future__ import annotations

FEEDBACK = "streamtriage_feedback"


def precision_sql(table: str, where: str = "1") -> str:
    """Per entry: calls confirmed, calls marked wrong, and the precision (latest verdict per call);
    ``where`` filters calls (columns ``ServiceName``, ``KbId``)."""
    return f"""
SELECT KbId AS kb_id, countIf(Kind = 'confirm') AS confirmed, countIf(Kind = 'wrong') AS wrong,
       round(confirmed / (confirmed + wrong), 4) AS precision
FROM (SELECT Key, argMax(Kind, Version) AS Kind, argMax(KbId, Version) AS KbId,
             argMax(ServiceName, Version) AS ServiceName
      FROM {table} WHERE Scope = 'call' GROUP BY Key)
WHERE Kind IN ('confirm', 'wrong') AND KbId != '' AND {where}
GROUP BY KbId ORDER BY KbId"""
