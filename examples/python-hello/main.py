"""DESIGN.md's hello world in Python: POST / with the header ``name: world`` answers ``hello world``."""

from pilotlight import logger, post


@post("/")
def hello(request, context):
    name = request.header("name", "world")
    logger.info("function is running", name=name)
    return f"hello {name}"
