"""The auditing agent (``rho-audit investigate``): an LLM on the Messages API that finds what a
fine-tune did with tools (the models' answers, the diff results, steering, dimensions) and ends
with a description of the fine-tuning objective, graded 1-5 against the truth."""

from rho_audit.agent.loop import AgentError, InvestigateConfig, Investigation, investigate
from rho_audit.agent.tools import SPECS, SUBMIT, ToolBox, input_problems, tool_specs

__all__ = [
    "SPECS",
    "SUBMIT",
    "AgentError",
    "InvestigateConfig",
    "Investigation",
    "ToolBox",
    "input_problems",
    "investigate",
    "tool_specs",
]
