/**
 * Entry of the bundled command line (build/cli/main.js, made by scripts/bundle.js): oclif's `execute`,
 * from the same bundle as the commands, so that oclif and mailvault's modules load as a few files
 * instead of about 200 (start-up measured in scripts/bundle.js). bin/run.js imports it.
 */
export { execute } from '@oclif/core/execute';
