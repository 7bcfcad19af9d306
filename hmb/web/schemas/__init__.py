"""Request and response models, shared by the handlers and the OpenAPI document."""
