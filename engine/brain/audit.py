"""A decision's audit trail as text: prompt, raw answer, parsed plans, every correction.

What the TUI's prompt view shows (and what a person reads to see why a trade happened).
"""

from __future__ import annotations

from engine import numfmt
from engine.types import Decision, TradePlan


def _plan_text(plan: TradePlan) -> str:
    parts = [f"{plan.instrument} {plan.action.value}"]
    if plan.size:
        parts.append(f"size {plan.size:g} ({plan.size_mode})")
    for label, value in (("stop", plan.stop_loss), ("target", plan.take_profit)):
        if value is not None:
            parts.append(f"{label} {numfmt.fmt_price(value)}")
    if plan.trailing is not None:
        parts.append(f"trailing {plan.trailing.distance:g} {plan.trailing.mode}")
    return ", ".join(parts)


def audit_text(decision: Decision) -> str:
    """Prompt, raw answer, parsed plans, grounding, corrections and errors, in sections."""
    out: list[str] = []
    out.append("── prompt")
    out.append(decision.prompt or f"(the {decision.brain} brain works without a prompt)")
    out.append("")
    out.append("── raw answer")
    out.append(decision.raw_answer if decision.raw_answer is not None else "(none)")
    out.append("")
    out.append("── parsed plans (after RiskGuard)")
    out.extend(f"- {_plan_text(p)}" for p in decision.plans)
    if not decision.plans:
        out.append("(none)")
    out.append(f"reasoning: {decision.reasoning or '(none)'}")
    out.append("")
    out.append("── grounding")
    if decision.grounded is None:
        out.append("(not checked)")
    elif decision.grounded:
        out.append(
            "grounded: it cites its instrument's facts; its numbers, instruments and side "
            "agree with the prompt"
        )
    else:
        out.extend(f"- {g}" for g in decision.grounding)
    out.append("")
    out.append("── corrections")
    out.extend(f"- {c}" for c in decision.corrections)
    if not decision.corrections:
        out.append("(none)")
    if decision.errors:
        out.append("")
        out.append("── errors")
        out.extend(f"- {e}" for e in decision.errors)
    return "\n".join(out)
