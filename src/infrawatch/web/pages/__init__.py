"""Console pages, one module per area. Pages read through the domains'
services; every change goes through the JSON API from the browser, so the
console gets the API's validation, RBAC and audit with nothing duplicated."""
