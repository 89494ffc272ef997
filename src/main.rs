//! Entry point: parse the command line, load the config, start logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use growth_stack::app;
use growth_stack::cli::{Cli, Command, ServeArgs};
use growth_stack::config::{keys_table, Config, LogFormat, Sources};
use growth_stack::tools::{bench, demo, lifecycle};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (command, serve) = match cli.command {
        None => (None, cli.serve),
        Some(Command::Serve(args)) => (None, args),
        Some(other) => (Some(other), ServeArgs::default()),
    };
    let mut flags = cli.global.overrides();
    flags.extend(serve.overrides());
    let config = match Config::load(Sources {
        file: cli.global.config.as_deref(),
        env: &|k| std::env::var(k).ok(),
        flags,
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("growth-stack: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Config(args)) = &command {
        if args.keys {
            print!("{}", keys_table(args.markdown));
        } else {
            print!("{}", config.to_toml_masked());
        }
        return ExitCode::SUCCESS;
    }
    init_tracing(config.server.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("growth-stack: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), Box<dyn std::error::Error>> = runtime.block_on(async {
        match command {
            None => app::serve(config).await.map_err(Into::into),
            Some(Command::Demo(args)) => demo::run(&config, &args).await.map_err(Into::into),
            Some(Command::Bench(args)) => bench::run(&config, &args).await.map_err(Into::into),
            Some(Command::BenchAi(args)) => bench::run_ai(&args).await.map_err(Into::into),
            Some(Command::Export(args)) => lifecycle::export(&config, &args).await,
            Some(Command::Import(args)) => lifecycle::import(&config, &args).await,
            Some(Command::Restore(args)) => lifecycle::restore(&config, &args).await,
            Some(Command::Migrate(args)) => lifecycle::migrate(&config, &args).await,
            Some(Command::Serve(_) | Command::Config(_)) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("growth-stack: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
