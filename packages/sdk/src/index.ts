/**
 * `@pilotlight/sdk`: everything a decorated function needs from one package — the
 * routing-controllers decorators and HTTP errors, and the platform logger.
 *
 * @example
 * ```ts
 * @Controller('/')
 * export class HelloWorldFunction {
 *   @Post('/')
 *   handle(@HeaderParam('name') name: string) {
 *     logger.info({ name }, 'function is running');
 *     return `hello ${name}`;
 *   }
 * }
 * ```
 */
import 'reflect-metadata';

export {
  All,
  BadRequestError,
  Body,
  BodyParam,
  ContentType,
  Controller,
  Ctx,
  Delete,
  ForbiddenError,
  Get,
  Head,
  Header,
  HeaderParam,
  HeaderParams,
  HttpCode,
  HttpError,
  InternalServerError,
  JsonController,
  MethodNotAllowedError,
  NotAcceptableError,
  NotFoundError,
  OnNull,
  OnUndefined,
  Param,
  Params,
  Patch,
  Post,
  Put,
  QueryParam,
  QueryParams,
  Redirect,
  Req,
  Res,
  UnauthorizedError,
  UseAfter,
  UseBefore,
} from 'routing-controllers';
export { logger } from '@pilotlight/logger';
export type { Logger } from '@pilotlight/logger';
