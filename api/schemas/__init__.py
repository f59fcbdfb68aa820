"""The API's contract: pydantic models of every request and response, and the rules they share."""
