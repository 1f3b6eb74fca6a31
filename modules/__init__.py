"""The platform's constructs, one package per layer; ``common`` holds the building blocks several layers use."""
