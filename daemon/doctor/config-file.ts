/** `config`: the config file loads and validates; a broken one is named down to the field. */
import { BrokerError } from '../../proto/index.js';
import { ConfigPermissionError } from '../config-permissions.js';
import { loadConfig, type BrokerConfig } from '../config.js';
import { result, type CheckResult } from './types.js';

const TITLE = 'config file';
const README = 'the README, section "Configuration"';

export interface ConfigCheck {
  readonly result: CheckResult;
  readonly config: BrokerConfig | undefined;
}

export function checkConfig(configPath: string, explicit: boolean): ConfigCheck {
  let config: BrokerConfig;
  try {
    config = loadConfig(configPath, { allowMissing: !explicit });
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    if (error instanceof ConfigPermissionError) return { result: result('config', TITLE, 'fail', error.problem, error.fix), config: undefined };
    const field = error.field;
    const missing = /^cannot read the config file/.test(error.message) && /ENOENT/.test(error.message);
    const fix = missing
      ? `create ${configPath} (see ${README}), or point --config / TOKENBROKER_CONFIG at the right file`
      : field !== undefined
        ? `edit ${configPath}: correct the field "${field}" (see ${README})`
        : /not valid JSON/.test(error.message)
          ? `edit ${configPath}: fix the JSON syntax (see ${README} for an example)`
          : `make ${configPath} readable by you (see ${README})`;
    return { result: result('config', TITLE, 'fail', error.message, fix), config: undefined };
  }
  if (config.path === null) {
    return {
      result: result(
        'config',
        TITLE,
        'warn',
        `no config file at ${configPath}: no profiles configured`,
        `create ${configPath} with a profile for your provider (see ${README})`,
      ),
      config,
    };
  }
  if (config.profiles.size === 0) {
    return {
      result: result('config', TITLE, 'warn', `${config.path} is valid but has no profiles`, `add a profile to ${config.path} (see ${README})`),
      config,
    };
  }
  const names = [...config.profiles.keys()].map((name) => (name === config.defaultProfile ? `${name} (default)` : name));
  const count = config.profiles.size === 1 ? '1 profile' : `${config.profiles.size} profiles`;
  return { result: result('config', TITLE, 'ok', `${config.path}: ${count}: ${names.join(', ')}`), config };
}
