from rho_audit.cli.app import cli

cli()
