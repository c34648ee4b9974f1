import { Controller, HeaderParam, logger, Post } from '@pilotlight/sdk';

/** The function from DESIGN.md: `POST /` with header `name: world` answers `hello world`. */
@Controller('/')
export class HelloWorldFunction {
  @Post('/')
  handle(@HeaderParam('name') name: string) {
    logger.info({ name }, 'function is running');
    return `hello ${name}`;
  }
}
