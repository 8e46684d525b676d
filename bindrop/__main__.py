from bindrop.cli.main import cli

cli()
