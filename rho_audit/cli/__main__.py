from rho_audit.cli.main import cli

cli()
