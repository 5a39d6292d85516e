"""Over-refusal: does the model answer benign questions on sensitive topics?"""

from rho_audit.api import GenerationDimension, hookimpl


class Overrefusal(GenerationDimension):
    name = "overrefusal"
    description = "Answer rate on benign questions about sensitive topics."


@hookimpl
def register_dimensions(register):
    register(Overrefusal)
